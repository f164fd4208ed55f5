//! Conversions between the generated bindings and the host's [`contract`] types, and what
//! each answer counts against the output limit.

use super::bindings::mathison::plugin::types as wit;
use super::{ELEMENT_COST, OBJECT_COST};
use crate::model::contract;
use crate::untrusted::escape;

pub fn plugin_info(info: wit::PluginInfo) -> contract::PluginInfo {
    contract::PluginInfo {
        name: info.name,
        version: info.version,
        description: info.description,
        config_schema: info.config_schema,
        default_config: info.default_config,
        kinds: info
            .kinds
            .into_iter()
            .map(|k| contract::KindRef {
                api_version: k.api_version,
                kind: k.kind,
            })
            .collect(),
    }
}

pub fn plugin_info_size(info: &contract::PluginInfo) -> usize {
    info.name.len()
        + info.version.len()
        + info.description.len()
        + info.config_schema.len()
        + info.default_config.len()
        + info
            .kinds
            .iter()
            .map(|k| k.api_version.len() + k.kind.len() + ELEMENT_COST)
            .sum::<usize>()
}

pub fn render_context(context: &contract::RenderContext) -> wit::RenderContext {
    wit::RenderContext {
        namespace: context.namespace.clone(),
        instance: context.instance.clone(),
        host_version: context.host_version.clone(),
    }
}

pub fn render_output(output: wit::RenderOutput) -> contract::RenderOutput {
    contract::RenderOutput {
        objects: output
            .objects
            .into_iter()
            .map(|o| contract::Envelope {
                api_version: o.api_version,
                kind: o.kind,
                name: o.name,
                namespace: o.namespace,
                body: o.body,
            })
            .collect(),
        connection_values: output
            .connection_values
            .into_iter()
            .map(|c| contract::ConnectionValue {
                key: c.key,
                value: c.value,
                secret_input: c.secret_input,
            })
            .collect(),
    }
}

pub fn render_output_size(output: &contract::RenderOutput) -> usize {
    let objects: usize = output
        .objects
        .iter()
        .map(|o| {
            o.api_version.len()
                + o.kind.len()
                + o.name.len()
                + o.namespace.as_ref().map_or(0, String::len)
                + o.body.len()
                + OBJECT_COST
        })
        .sum();
    let values: usize = output
        .connection_values
        .iter()
        .map(|c| {
            c.key.len()
                + c.value.len()
                + c.secret_input.as_ref().map_or(0, String::len)
                + ELEMENT_COST
        })
        .sum();
    objects + values
}

pub fn render_error(error: wit::RenderError) -> contract::RenderError {
    match error {
        wit::RenderError::InvalidConfig(fields) => contract::RenderError::InvalidConfig(
            fields
                .into_iter()
                // Only ever shown: escaped where it enters the host.
                .map(|f| contract::FieldError {
                    path: escape(&f.path).into_owned(),
                    message: escape(&f.message).into_owned(),
                })
                .collect(),
        ),
        wit::RenderError::Internal(message) => {
            contract::RenderError::Internal(escape(&message).into_owned())
        }
    }
}

pub fn log_level(level: wit::LogLevel) -> contract::LogLevel {
    match level {
        wit::LogLevel::Debug => contract::LogLevel::Debug,
        wit::LogLevel::Info => contract::LogLevel::Info,
        wit::LogLevel::Warn => contract::LogLevel::Warn,
        wit::LogLevel::Error => contract::LogLevel::Error,
    }
}
