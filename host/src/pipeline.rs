//! The render pipeline: plan → runtime → decode → policy → merge → order.
//!
//! Plugins are independent, so each stage that runs plugins runs them in parallel; results
//! and errors are collected in the order the user gave the plugins, so output and the error
//! reported never depend on thread timing.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use crate::contract::{LogLine, PluginInfo};
use crate::decode::{self, DecodeError, is_dns_label};
use crate::merge::{self, MergeError, MergeSettings, Placed, PluginObjects};
use crate::order;
use crate::plan::{self, Plan};
use crate::policy::PolicyError;
use crate::runtime::{CacheOutcome, CallError, LoadError, LoadedPlugin, Runtime};
use crate::values::{ConfigError, ValuesError};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The call's error is part of this line rather than a `source`: it is the cause, and
    /// repeating it as "caused by" would print it twice.
    #[error("{plugin}: {error}")]
    Call { plugin: String, error: CallError },
    #[error("{plugin}: `info` is invalid: {message}")]
    Info { plugin: String, message: String },
    #[error("{first} and {second} are both named {name:?}; plugin names must be unique")]
    DuplicateName {
        name: String,
        first: String,
        second: String,
    },
    #[error(transparent)]
    Values(#[from] ValuesError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Merge(#[from] MergeError),
}

/// What one plugin did during a render, for logs and `-v`.
#[derive(Debug, Clone)]
pub struct PluginReport {
    pub label: String,
    pub path: PathBuf,
    pub name: String,
    pub cache: CacheOutcome,
    pub logs: Vec<LogLine>,
    pub objects: usize,
}

/// The result of a render: objects in install order, notes for the user, and per-plugin reports.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub objects: Vec<Placed>,
    pub notes: Vec<String>,
    pub plugins: Vec<PluginReport>,
}

/// A plugin that was loaded and described itself.
struct Described {
    label: String,
    loaded: LoadedPlugin,
    info: PluginInfo,
    logs: Vec<LogLine>,
}

/// Loads a plugin and calls `info`, checking what it says.
pub fn describe(
    runtime: &Runtime,
    path: &Path,
) -> Result<(LoadedPlugin, PluginInfo, Vec<LogLine>), PipelineError> {
    let label = plan::label(path);
    let loaded = runtime.load(path)?;
    let called = runtime.info(&loaded).map_err(|error| PipelineError::Call {
        plugin: label.clone(),
        error,
    })?;
    check_info(&label, &called.value)?;
    Ok((loaded, called.value, called.logs))
}

fn check_info(label: &str, info: &PluginInfo) -> Result<(), PipelineError> {
    let invalid = |message: String| PipelineError::Info {
        plugin: label.to_string(),
        message,
    };
    if !is_dns_label(&info.name) {
        return Err(invalid(format!(
            "name {:?} must be a DNS-1123 label (lower-case letters, digits, '-')",
            info.name
        )));
    }
    if info.name == merge::HOST_ORIGIN {
        return Err(invalid(format!(
            "name {:?} is reserved for the host",
            info.name
        )));
    }
    if info.kinds.is_empty() {
        return Err(invalid(
            "it declares no kinds, so it could emit nothing".into(),
        ));
    }
    Ok(())
}

/// Runs the whole pipeline for `plan`.
pub fn render(runtime: &Runtime, plan: &Plan) -> Result<Rendered, PipelineError> {
    let described: Vec<Described> = in_parallel(&plan.plugins, |path| {
        let (loaded, info, logs) = describe(runtime, path)?;
        Ok(Described {
            label: plan::label(path),
            loaded,
            info,
            logs,
        })
    })?;

    for (index, plugin) in described.iter().enumerate() {
        if let Some(first) = described[..index]
            .iter()
            .find(|p| p.info.name == plugin.info.name)
        {
            return Err(PipelineError::DuplicateName {
                name: plugin.info.name.clone(),
                first: first.label.clone(),
                second: plugin.label.clone(),
            });
        }
    }
    plan.values
        .check_sections(described.iter().map(|p| p.info.name.as_str()))?;

    let rendered: Vec<(PluginObjects, PluginReport)> =
        in_parallel(&described, |plugin| render_one(runtime, plan, plugin))?;

    let (contributions, reports): (Vec<_>, Vec<_>) = rendered.into_iter().unzip();
    let settings = MergeSettings {
        namespace: plan.context.namespace.clone(),
        instance: plan.context.instance.clone(),
        secret_inputs: plan.secret_inputs.clone(),
    };
    let mut merged = merge::merge(contributions, &settings)?;
    order::sort(&mut merged.objects);
    Ok(Rendered {
        objects: merged.objects,
        notes: merged.notes,
        plugins: reports,
    })
}

fn render_one(
    runtime: &Runtime,
    plan: &Plan,
    plugin: &Described,
) -> Result<(PluginObjects, PluginReport), PipelineError> {
    let info = &plugin.info;
    let config = plan
        .values
        .config_for(&info.name, &info.default_config, &info.config_schema)?;
    let called = runtime
        .render(&plugin.loaded, &plan.context, &config.to_string())
        .map_err(|error| PipelineError::Call {
            plugin: plugin.label.clone(),
            error,
        })?;

    let mut objects = Vec::with_capacity(called.value.objects.len());
    for envelope in &called.value.objects {
        let object = decode::decode(&plugin.label, envelope)?;
        plan.policy.check(&plugin.label, &info.kinds, &object)?;
        objects.push(object);
    }
    let report = PluginReport {
        label: plugin.label.clone(),
        path: plugin.loaded.path.clone(),
        name: info.name.clone(),
        cache: plugin.loaded.cache,
        logs: plugin.logs.iter().chain(&called.logs).cloned().collect(),
        objects: objects.len(),
    };
    let contribution = PluginObjects {
        name: info.name.clone(),
        source: plugin.label.clone(),
        version: info.version.clone(),
        objects,
        connection_values: called.value.connection_values,
    };
    Ok((contribution, report))
}

/// Maps `f` over `items` on as many threads as there are cores (this one included), each taking
/// the next item until none is left; the first error in item order wins.
fn in_parallel<I: Sync, T: Send>(
    items: &[I],
    f: impl Fn(&I) -> Result<T, PipelineError> + Sync,
) -> Result<Vec<T>, PipelineError> {
    let workers = thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(items.len());
    if workers <= 1 {
        return items.iter().map(&f).collect();
    }
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(index) else {
                return done;
            };
            done.push((index, f(item)));
        }
    };
    let mut done: Vec<(usize, Result<T, PipelineError>)> = thread::scope(|scope| {
        let helpers: Vec<_> = (1..workers).map(|_| scope.spawn(work)).collect();
        let mut done = work();
        for helper in helpers {
            match helper.join() {
                Ok(results) => done.extend(results),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        done
    });
    done.sort_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, result)| result).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_results_keep_item_order_and_the_first_error_wins() {
        let items: Vec<u32> = (0..100).collect();
        let doubled = in_parallel(&items, |item| Ok(item * 2)).expect("no error");
        assert_eq!(
            doubled,
            items.iter().map(|item| item * 2).collect::<Vec<_>>()
        );

        let failing = in_parallel(&items, |item| {
            if item % 30 == 29 {
                Err(PipelineError::Info {
                    plugin: item.to_string(),
                    message: "fails".into(),
                })
            } else {
                Ok(*item)
            }
        });
        assert!(
            matches!(failing, Err(PipelineError::Info { plugin, .. }) if plugin == "29"),
            "the first failing item in order is reported"
        );
    }
}
