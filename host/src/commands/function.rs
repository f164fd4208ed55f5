//! `mathison-host fn`: run as a KRM function, the way kpt and kustomize run generators.

use std::fs;
use std::io::{self, Read};
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::cli::RenderArgs;
use crate::krm::{FieldRef, FnResult, ResourceList, Severity, field_path};
use crate::model::contract::LogLevel;
use crate::output::Format;
use crate::pipeline::Rendered;
use crate::project::lock::{self, LockMode};

/// The largest input read: a package's manifests, far below this, are read whole.
const MAX_INPUT_BYTES: u64 = 256 << 20;

/// Run as a KRM function: read a ResourceList on stdin whose functionConfig is a project
/// (mathison.dev/v1alpha1 Project), add the rendered objects to its items and write it on
/// stdout. On failure, nothing is added, `results` says why, and the exit status is 1.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    kpt fn eval --exec 'mathison-host fn' --fn-config mathison.yaml .\n  \
    kpt fn render --allow-exec   # Kptfile: pipeline.mutators: [{exec: mathison-host fn, configPath: mathison.yaml}]\n  \
    mathison-host fn generator.yaml   # a kustomize exec plugin: the configuration in a file, no stdin\n\n\
    Plugins are held to the lock file beside the configuration (mathison.lock) when there is one;\n\
    the function never writes it: run `mathison-host lock --project FILE`.")]
pub struct FunctionCommand {
    /// The function's configuration in a file of its own, as kustomize passes it to an exec
    /// plugin; then stdin is not read and the output holds only the rendered objects.
    #[arg(value_name = "CONFIG")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub render: RenderArgs,
}

impl FunctionCommand {
    pub fn run(self, verbose: bool) -> anyhow::Result<()> {
        if self.render.project.is_some() {
            anyhow::bail!(
                "fn takes its project from the functionConfig (or CONFIG), not from --project"
            );
        }
        let mut list = match self.read() {
            Ok(list) => list,
            Err(error) => {
                let mut list = ResourceList::empty(Format::Yaml);
                list.results.push(failure(&error, None));
                return finish(&list, Err(error));
            }
        };
        let outcome = self.render(&list, verbose);
        match &outcome {
            Ok(rendered) => {
                list.add(&rendered.objects);
                list.results.extend(notices(rendered));
            }
            Err(error) => {
                let field = error
                    .downcast_ref::<crate::krm::FnFailure>()
                    .and_then(|failure| failure.pointer())
                    .map(|pointer| FieldRef {
                        path: field_path(pointer),
                    });
                let mut result = failure(error, field);
                (result.resource_ref, result.file) = list.config_ref();
                list.results.push(result);
            }
        }
        finish(&list, outcome.map(drop))
    }

    /// The input: the ResourceList on stdin, or the configuration file alone.
    fn read(&self) -> anyhow::Result<ResourceList> {
        if let Some(path) = &self.config {
            let text = fs::read_to_string(path)
                .with_context(|| format!("cannot read the configuration {}", path.display()))?;
            return Ok(ResourceList::from_config(&text)?);
        }
        let mut text = String::new();
        io::stdin()
            .lock()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_string(&mut text)
            .context("cannot read the ResourceList on stdin")?;
        if text.len() as u64 > MAX_INPUT_BYTES {
            anyhow::bail!(
                "the ResourceList on stdin is larger than {} MiB",
                MAX_INPUT_BYTES >> 20
            );
        }
        Ok(ResourceList::parse(&text)?)
    }

    fn render(&self, list: &ResourceList, verbose: bool) -> anyhow::Result<Rendered> {
        let project = list.project()?;
        // A function never writes files: the lock is used when it exists (or --locked asks for
        // it), and plugins are taken as named otherwise.
        let lock =
            (self.render.locked || lock::lock_path(&project).is_file()).then_some(LockMode::Locked);
        let locator = self.render.runtime.locator();
        let prepared = self.render.prepare_with(&locator, Some(project), lock)?;
        let (rendered, _) = super::render_prepared(&self.render, &locator, prepared)?;
        // What the plugins said is in `results`; stderr repeats it only with -v.
        if verbose {
            super::report(&rendered.plugins, &rendered.notes, verbose);
        }
        Ok(rendered)
    }
}

/// Writes `list` on stdout, then returns `outcome` (whose error `main` also prints on stderr).
fn finish(list: &ResourceList, outcome: anyhow::Result<()>) -> anyhow::Result<()> {
    super::write_stdout(&list.to_string()?)?;
    outcome
}

/// An error as a result: the message with its causes.
fn failure(error: &anyhow::Error, field: Option<FieldRef>) -> FnResult {
    FnResult {
        message: format!("{error:#}"),
        severity: Severity::Error,
        resource_ref: None,
        field,
        file: None,
    }
}

/// What a successful render has to say: the plugins' warnings and errors, and the notes.
fn notices(rendered: &Rendered) -> Vec<FnResult> {
    let logged = rendered.plugins.iter().flat_map(|plugin| {
        plugin
            .logs
            .iter()
            .filter(|line| line.level >= LogLevel::Warn)
            .map(move |line| {
                (
                    Severity::Warning,
                    format!("{}: {}", plugin.source, line.message),
                )
            })
    });
    let notes = rendered
        .notes
        .iter()
        .map(|note| (Severity::Info, note.clone()));
    logged
        .chain(notes)
        .map(|(severity, message)| FnResult {
            message,
            severity,
            resource_ref: None,
            field: None,
            file: None,
        })
        .collect()
}
