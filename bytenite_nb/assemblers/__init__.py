"""Assemblers: fan chunk results back in.

Built-ins are listed in :data:`BUILTINS`; other packages add theirs through
the ``bytenite_nb.assemblers`` entry point group, notebooks with the
:func:`bytenite_nb.assembler` decorator.
"""

from .base import Assembler, ChunkResult, FunctionAssembler, ResultFile, as_assembler, chunk_folder

BUILTINS = {
    "passthrough": "bytenite_nb.assemblers.passthrough:Passthrough",
    "concat": "bytenite_nb.assemblers.concat:Concat",
    "zip": "bytenite_nb.assemblers.zip:Zip",
    "merge-key": "bytenite_nb.assemblers.merge_key:MergeKey",
    "sorted-concat": "bytenite_nb.assemblers.sorted_concat:SortedConcat",
    "stitch": "bytenite_nb.assemblers.stitch:Stitch",
    "log-merge": "bytenite_nb.assemblers.log_merge:LogMerge",
    "schema-merge": "bytenite_nb.assemblers.schema_merge:SchemaMerge",
    "codebase": "bytenite_nb.assemblers.codebase:Codebase",
    "json-objects": "bytenite_nb.assemblers.json_objects:JsonObjects",
    "image-mosaic": "bytenite_nb.assemblers.image_mosaic:ImageMosaic",
    "image-package": "bytenite_nb.assemblers.image_package:ImagePackage",
    "audio-concat": "bytenite_nb.assemblers.audio_concat:AudioConcat",
    "audio-index": "bytenite_nb.assemblers.audio_index:AudioIndex",
    "video-stitch": "bytenite_nb.assemblers.video_stitch:VideoStitch",
    "video-ladder": "bytenite_nb.assemblers.video_ladder:VideoLadder",
    "video-scenes": "bytenite_nb.assemblers.video_scenes:VideoScenes",
}

__all__ = ["Assembler", "BUILTINS", "ChunkResult", "FunctionAssembler", "ResultFile", "as_assembler", "chunk_folder"]
