"""Partitioners: fan a source out into chunk references.

Built-ins are listed in :data:`BUILTINS`; other packages add theirs through
the ``bytenite_nb.partitioners`` entry point group, notebooks with the
:func:`bytenite_nb.partitioner` decorator.
"""

from .base import ChunkRef, FunctionPartitioner, Partitioner, Source, as_partitioner

BUILTINS = {
    "passthrough": "bytenite_nb.partitioners.passthrough:Passthrough",
    "replicate": "bytenite_nb.partitioners.replicate:Replicate",
    "files": "bytenite_nb.partitioners.files:Files",
    "split-lines": "bytenite_nb.partitioners.split_lines:SplitLines",
    "rows": "bytenite_nb.partitioners.rows:Rows",
    "text-size": "bytenite_nb.partitioners.text_size:TextSize",
    "sections": "bytenite_nb.partitioners.sections:Sections",
    "log-time": "bytenite_nb.partitioners.log_time:LogTime",
    "codebase": "bytenite_nb.partitioners.codebase:Codebase",
    "json-objects": "bytenite_nb.partitioners.json_objects:JsonObjects",
    "key": "bytenite_nb.partitioners.key:Key",
    "date-range": "bytenite_nb.partitioners.date_range:DateRange",
    "image-tiles": "bytenite_nb.partitioners.image_tiles:ImageTiles",
    "image-batches": "bytenite_nb.partitioners.image_batches:ImageBatches",
    "audio-time": "bytenite_nb.partitioners.audio_time:AudioTime",
    "audio-silence": "bytenite_nb.partitioners.audio_silence:AudioSilence",
    "audio-language": "bytenite_nb.partitioners.audio_language:AudioLanguage",
    "video-frames": "bytenite_nb.partitioners.video_frames:VideoFrames",
    "video-ladder": "bytenite_nb.partitioners.video_ladder:VideoLadder",
    "video-scenes": "bytenite_nb.partitioners.video_scenes:VideoScenes",
}

__all__ = ["BUILTINS", "ChunkRef", "FunctionPartitioner", "Partitioner", "Source", "as_partitioner"]
