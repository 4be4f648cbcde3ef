/**
 * The bytenite-nb JupyterLab extension: the ByteNite sidebar (jobs,
 * components, cluster), the job editor for `*.bnjob.json` files, and the
 * commands New job, Insert job code into the active notebook and Export job
 * as a papermill job notebook (palette and launcher).
 */

import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, ICommandPalette, MainAreaWidget, showDialog, showErrorMessage, WidgetTracker } from '@jupyterlab/apputils';
import { IEditorServices } from '@jupyterlab/codeeditor';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { IMainMenu } from '@jupyterlab/mainmenu';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon } from '@jupyterlab/ui-components';

import { dirname, jobToPython, papermillNotebook, secretNameRule } from './codegen';
import { JobEditorDocument, JobEditorFactory, loadCatalog } from './editor';
import { JobDetailWidget } from './jobdetail';
import { IJobSummary, JOB_FILE_SUFFIX, jobStem, newJobTemplate, serializeJob } from './model';
import { ISidebarSettings, JobsSidebar } from './sidebar';

const PLUGIN_ID = 'bytenite-nb:plugin';
const FACTORY = 'ByteNite Job Editor';
const FILE_TYPE = 'bnjob';
const CATEGORY = 'ByteNite';

/** Command ids. */
export namespace CommandIDs {
  export const newJob = 'bytenite-nb:new-job';
  export const insertCode = 'bytenite-nb:insert-job-code';
  export const exportPapermill = 'bytenite-nb:export-papermill';
  export const openSidebar = 'bytenite-nb:open-sidebar';
  export const openJob = 'bytenite-nb:open-job';
  export const validate = 'bytenite-nb:validate';
  export const plan = 'bytenite-nb:plan';
  export const run = 'bytenite-nb:run';
}

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <rect x="1" y="9" width="5" height="6" rx="1"/>
    <rect x="9.5" y="2" width="5" height="5" rx="1"/>
    <rect x="9.5" y="9.5" width="5" height="5" rx="1"/>
    <rect x="9.5" y="17" width="5" height="5" rx="1"/>
    <rect x="18" y="9" width="5" height="6" rx="1"/>
    <path d="M6 12 L9.5 4.5 M6 12 L9.5 12 M6 12 L9.5 19.5 M14.5 4.5 L18 12 M14.5 12 L18 12 M14.5 19.5 L18 12" stroke="#616161" stroke-width="1" fill="none"/>
  </g>
</svg>`;

/** The ByteNite icon (sidebar tab, job files, launcher). */
export const byteniteIcon = new LabIcon({ name: 'bytenite-nb:logo', svgstr: ICON_SVG });

const DEFAULT_SETTINGS: ISidebarSettings = { pollInterval: 2, defaultCluster: '', showCluster: true };

function readSettings(settings: ISettingRegistry.ISettings | null): ISidebarSettings {
  if (!settings) {
    return DEFAULT_SETTINGS;
  }
  const composite = settings.composite as Partial<ISidebarSettings>;
  return {
    pollInterval: Number(composite.pollInterval ?? DEFAULT_SETTINGS.pollInterval),
    defaultCluster: String(composite.defaultCluster ?? ''),
    showCluster: composite.showCluster !== false
  };
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'ByteNite jobs on Dask: sidebar, job editor, commands.',
  autoStart: true,
  requires: [IEditorServices, IDefaultFileBrowser],
  optional: [ISettingRegistry, ICommandPalette, ILauncher, INotebookTracker, ILayoutRestorer, IMainMenu],
  activate: (
    app: JupyterFrontEnd,
    editorServices: IEditorServices,
    browser: IDefaultFileBrowser,
    settingRegistry: ISettingRegistry | null,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    notebooks: INotebookTracker | null,
    restorer: ILayoutRestorer | null,
    mainMenu: IMainMenu | null
  ): void => {
    const { commands, shell, serviceManager } = app;
    let settings: ISidebarSettings = DEFAULT_SETTINGS;

    // -- the sidebar ------------------------------------------------------------------
    const details = new WidgetTracker<MainAreaWidget<JobDetailWidget>>({ namespace: 'bytenite-nb-jobs' });
    /** The open panel of a job looks again (it stops asking once the job has ended). */
    const refreshDetail = (id: string) => details.find(w => w.content.jobId === id)?.content.refresh();
    const actions = {
      openJob: (id: string) => void commands.execute(CommandIDs.openJob, { id }),
      jobChanged: refreshDetail,
      openJobFile: (path: string) => void commands.execute('docmanager:open', { path }),
      openOutput: (job: IJobSummary) => {
        if (job.destinationPath !== null) {
          void commands
            .execute('filebrowser:go-to-path', { path: '/' + job.destinationPath, dontShowBrowser: false })
            .then(() => shell.activateById(browser.id));
        } else {
          void showDialog({
            title: `Output of ${job.id}`,
            body: `The output is written to ${job.destination}, outside this server's files.`,
            buttons: [Dialog.okButton({ label: 'Close' })]
          });
        }
      }
    };
    const sidebar = new JobsSidebar(actions, settings);
    sidebar.title.icon = byteniteIcon;
    sidebar.title.caption = 'ByteNite jobs';
    shell.add(sidebar, 'left', { rank: 900 });
    if (restorer) {
      restorer.add(sidebar, sidebar.id);
    }

    // Settings arrive later; everything else is in place before activate returns.
    settingRegistry?.load(PLUGIN_ID).then(
      loaded => {
        settings = readSettings(loaded);
        sidebar.updateSettings(settings);
        loaded.changed.connect(() => {
          settings = readSettings(loaded);
          sidebar.updateSettings(settings);
        });
      },
      error => console.warn('bytenite-nb: cannot load settings, using the defaults', error)
    );

    // -- job files and their editor -----------------------------------------------------
    app.docRegistry.addFileType({
      name: FILE_TYPE,
      displayName: 'ByteNite job',
      extensions: [JOB_FILE_SUFFIX],
      mimeTypes: ['application/json'],
      icon: byteniteIcon,
      contentType: 'file',
      fileFormat: 'text'
    });
    const factory = new JobEditorFactory(
      { name: FACTORY, label: 'ByteNite job editor', fileTypes: [FILE_TYPE], defaultFor: [FILE_TYPE], modelName: 'text' },
      editorServices,
      {
        defaultCluster: () => settings.defaultCluster,
        submitted: (id: string) => {
          shell.activateById(sidebar.id);
          sidebar.refresh();
          refreshDetail(id);
        }
      }
    );
    app.docRegistry.addWidgetFactory(factory);
    const editors = new WidgetTracker<JobEditorDocument>({ namespace: 'bytenite-nb-editor' });
    factory.widgetCreated.connect((_, widget) => {
      widget.title.icon = byteniteIcon;
      void editors.add(widget);
      widget.context.pathChanged.connect(() => void editors.save(widget));
    });
    if (restorer) {
      void restorer.restore(editors, {
        command: 'docmanager:open',
        args: widget => ({ path: widget.context.path, factory: FACTORY }),
        name: widget => widget.context.path
      });
    }

    /** The job editor the command applies to: the current one, or the last one used. */
    const currentEditor = (): JobEditorDocument | null => editors.currentWidget;
    const needEditor = (): JobEditorDocument | null => {
      const editor = currentEditor();
      if (!editor) {
        void showErrorMessage('No job open', `Open a job file (*${JOB_FILE_SUFFIX}) in the job editor first.`);
      }
      return editor;
    };

    /** The library's rule for secret key names; null (and the reason shown) if the server does not answer. */
    const secretRule = async () => {
      try {
        return secretNameRule(await loadCatalog());
      } catch (error) {
        void showErrorMessage(
          'Cannot make code without the server',
          `Credentials are left out of generated code by the rule the server gives: ${(error as Error).message ?? error}`
        );
        return null;
      }
    };

    // -- commands ------------------------------------------------------------------------
    commands.addCommand(CommandIDs.newJob, {
      label: args => (args.isPalette ? 'New ByteNite Job' : 'ByteNite Job'),
      caption: 'Create a job file and open it in the job editor',
      icon: args => (args.isPalette ? undefined : byteniteIcon),
      execute: async args => {
        const cwd = (args.cwd as string) ?? browser.model.path;
        const model = await serviceManager.contents.newUntitled({ path: cwd, type: 'file', ext: JOB_FILE_SUFFIX });
        await serviceManager.contents.save(model.path, {
          type: 'file',
          format: 'text',
          content: serializeJob(newJobTemplate(jobStem(model.path)))
        });
        return commands.execute('docmanager:open', { path: model.path, factory: FACTORY });
      }
    });

    commands.addCommand(CommandIDs.insertCode, {
      label: 'Insert Job Code into the Active Notebook',
      caption: 'Add a cell that builds and runs the current job with the Python API',
      icon: args => (args.isPalette ? undefined : byteniteIcon),
      execute: async () => {
        const editor = needEditor();
        if (!editor) {
          return;
        }
        const panel = notebooks?.currentWidget;
        if (!panel) {
          void showErrorMessage('No notebook open', 'Open the notebook the job code should go into first.');
          return;
        }
        const isSecret = await secretRule();
        if (!isSecret) {
          return;
        }
        const code = jobToPython(editor.content.form.job, editor.context.path, dirname(panel.context.path), isSecret);
        NotebookActions.insertBelow(panel.content);
        panel.content.activeCell?.model.sharedModel.setSource(code);
        shell.activateById(panel.id);
      }
    });

    commands.addCommand(CommandIDs.exportPapermill, {
      label: 'Export Job as a Papermill Job Notebook',
      caption: 'Write a notebook with a parameters cell beside the job file, and open it',
      icon: args => (args.isPalette ? undefined : byteniteIcon),
      execute: async () => {
        const editor = needEditor();
        if (!editor) {
          return;
        }
        const isSecret = await secretRule();
        if (!isSecret) {
          return;
        }
        const jobPath = editor.context.path;
        const folder = dirname(jobPath);
        const stem = jobStem(jobPath);
        let path = '';
        for (let n = 0; ; n++) {
          path = `${folder ? folder + '/' : ''}${stem}${n ? `-${n}` : ''}.ipynb`;
          try {
            await serviceManager.contents.get(path, { content: false });
          } catch {
            break; // no such file: this name is free
          }
        }
        await serviceManager.contents.save(path, {
          type: 'notebook',
          format: 'json',
          content: papermillNotebook(editor.content.form.job, jobPath, isSecret)
        });
        return commands.execute('docmanager:open', { path });
      }
    });

    commands.addCommand(CommandIDs.openSidebar, {
      label: 'Show ByteNite Jobs',
      execute: () => shell.activateById(sidebar.id)
    });

    commands.addCommand(CommandIDs.openJob, {
      label: args => `Open Job ${args.id ?? ''}`,
      execute: args => {
        const id = String(args.id);
        const open = details.find(w => w.content.jobId === id);
        if (open) {
          open.content.refresh();
          shell.activateById(open.id);
          return;
        }
        const content = new JobDetailWidget(id, settings.pollInterval, actions);
        const widget = new MainAreaWidget({ content });
        widget.id = content.id;
        widget.title.label = content.title.label;
        widget.title.icon = byteniteIcon;
        void details.add(widget);
        shell.add(widget, 'main');
      }
    });

    const editorCommand = (id: string, label: string, run: (editor: JobEditorDocument) => Promise<void>) =>
      commands.addCommand(id, {
        label,
        isEnabled: () => currentEditor() !== null,
        execute: () => {
          const editor = needEditor();
          return editor ? run(editor) : undefined;
        }
      });
    editorCommand(CommandIDs.validate, 'Validate Job', e => e.content.validate());
    editorCommand(CommandIDs.plan, 'Plan Job (Preview Chunks)', e => e.content.planChunks());
    editorCommand(CommandIDs.run, 'Run Job', e => e.content.run());

    for (const command of [
      CommandIDs.newJob,
      CommandIDs.insertCode,
      CommandIDs.exportPapermill,
      CommandIDs.openSidebar,
      CommandIDs.validate,
      CommandIDs.plan,
      CommandIDs.run
    ]) {
      palette?.addItem({ command, category: CATEGORY });
    }
    mainMenu?.fileMenu.newMenu.addGroup([{ command: CommandIDs.newJob }], 30);
    if (launcher) {
      launcher.add({ command: CommandIDs.newJob, category: CATEGORY, rank: 1 });
      launcher.add({ command: CommandIDs.insertCode, category: CATEGORY, rank: 2 });
      launcher.add({ command: CommandIDs.exportPapermill, category: CATEGORY, rank: 3 });
    }
  }
};

export default plugin;
