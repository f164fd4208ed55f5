//! Configuration types that several plugins share, with their checks.

use k8s_openapi::api::core::v1::ResourceRequirements;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Quantity;
use crate::validate::Problems;

/// CPU and memory for a container.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// What the scheduler reserves for the container.
    pub requests: ResourceList,
    /// The most the container may use: CPU above it is throttled, memory above it is killed.
    /// Each limit must be at least its request.
    pub limits: ResourceList,
}

/// An amount of CPU and of memory.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceList {
    /// CPU as a Kubernetes quantity, in cores: "250m" is a quarter of one.
    pub cpu: Quantity,
    /// Memory as a Kubernetes quantity, in bytes: "512Mi", "1Gi".
    pub memory: Quantity,
}

impl Resources {
    /// From literal quantities (requests then limits), for a plugin's defaults.
    ///
    /// # Panics
    ///
    /// If a literal is not a quantity; the message names the caller's line.
    #[track_caller]
    pub fn new(
        cpu_request: &'static str,
        memory_request: &'static str,
        cpu_limit: &'static str,
        memory_limit: &'static str,
    ) -> Self {
        Self {
            requests: ResourceList::new(cpu_request, memory_request),
            limits: ResourceList::new(cpu_limit, memory_limit),
        }
    }

    /// Every amount above zero and each limit at least its request; `path` names this field.
    pub fn check(&self, problems: &mut Problems, path: &str) {
        for (name, list) in [("requests", &self.requests), ("limits", &self.limits)] {
            problems.positive(format!("{path}.{name}.cpu"), &list.cpu);
            problems.positive(format!("{path}.{name}.memory"), &list.memory);
        }
        for (resource, request, limit) in [
            ("cpu", &self.requests.cpu, &self.limits.cpu),
            ("memory", &self.requests.memory, &self.limits.memory),
        ] {
            if limit < request {
                problems.add(
                    format!("{path}.limits.{resource}"),
                    format!("the limit \"{limit}\" is below the request \"{request}\""),
                );
            }
        }
    }

    /// The container's `resources`.
    pub fn to_k8s(&self) -> ResourceRequirements {
        let list = |l: &ResourceList| {
            [
                ("cpu".to_owned(), (&l.cpu).into()),
                ("memory".to_owned(), (&l.memory).into()),
            ]
            .into()
        };
        ResourceRequirements {
            requests: Some(list(&self.requests)),
            limits: Some(list(&self.limits)),
            ..Default::default()
        }
    }
}

impl ResourceList {
    #[track_caller]
    fn new(cpu: &'static str, memory: &'static str) -> Self {
        Self {
            cpu: Quantity::from_static(cpu),
            memory: Quantity::from_static(memory),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::panic;
    use std::sync::{Mutex, PoisonError};

    use super::*;
    use crate::RenderError;

    #[test]
    fn limit_below_request_is_refused_with_its_path() {
        let mut problems = Problems::default();
        Resources::new("1", "1Gi", "500m", "1Gi").check(&mut problems, "resources");
        match problems.finish() {
            Err(RenderError::InvalidConfig(errors)) => {
                assert_eq!(errors.len(), 1);
                assert_eq!(errors[0].path, "resources.limits.cpu");
            }
            other => panic!("expected invalid-config, got {other:?}"),
        }
    }

    /// A typo in a default panics inside `info`; the message must point at the plugin's line,
    /// not at the SDK's or the quantity crate's.
    #[test]
    fn a_bad_literal_panics_at_the_callers_line() {
        static LOCATION: Mutex<Option<String>> = Mutex::new(None);
        panic::set_hook(Box::new(|info| {
            let message = info.payload_as_str().unwrap_or_default();
            if message.starts_with("invalid quantity literal") {
                let location = info.location().map(ToString::to_string);
                *LOCATION.lock().unwrap_or_else(PoisonError::into_inner) = location;
            }
        }));
        let line = line!() + 1;
        let result = panic::catch_unwind(|| Resources::new("1", "1Gi", "2 cores", "1Gi"));
        // Back to the default hook, which the test harness captures.
        drop(panic::take_hook());
        assert!(result.is_err());
        let location = LOCATION
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let here = format!("{}:{line}:", file!());
        assert!(
            location.as_deref().is_some_and(|l| l.starts_with(&here)),
            "the panic is at {location:?}, not at {here}"
        );
    }

    #[test]
    fn equal_values_in_other_units_pass() {
        let mut problems = Problems::default();
        Resources::new("1000m", "1024Mi", "1", "1Gi").check(&mut problems, "resources");
        assert!(problems.finish().is_ok());
    }
}
