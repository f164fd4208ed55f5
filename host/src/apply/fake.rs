//! An in-memory cluster for the apply logic's tests: it records every call and serves scripted
//! objects, statuses and errors.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};

use kube::api::{ApiResource, DynamicObject, ListParams, PatchParams};
use serde_json::Value;

use super::changes::{Resource, Target};
use super::cluster::{Cluster, ClusterError};

type Key = (String, Option<String>, String);

fn key(resource: &Resource, namespace: Option<&str>, name: &str) -> Key {
    (
        resource.api.plural.clone(),
        namespace.map(str::to_string),
        name.to_string(),
    )
}

#[derive(Debug, Default)]
pub struct FakeCluster {
    /// Live objects by (plural, namespace, name).
    pub objects: RefCell<BTreeMap<Key, Value>>,
    /// Successive answers to GETs of one object name; the last one repeats.
    pub gets: RefCell<BTreeMap<String, VecDeque<Value>>>,
    /// An error for any call on an object of this name.
    pub failures: BTreeMap<String, ClusterError>,
    /// What discovery knows beyond nothing.
    pub discoverable: Vec<Resource>,
    /// Every call, as `VERB plural namespace/name [flags]`.
    pub calls: RefCell<Vec<String>>,
}

impl FakeCluster {
    pub fn insert(&self, resource: &Resource, namespace: Option<&str>, body: Value) {
        let name = body["metadata"]["name"].as_str().unwrap_or_default();
        self.objects
            .borrow_mut()
            .insert(key(resource, namespace, name), body);
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.borrow().clone()
    }

    fn record(&self, call: String, name: &str) -> Result<(), ClusterError> {
        self.calls.borrow_mut().push(call);
        self.failures.get(name).cloned().map_or(Ok(()), Err)
    }
}

fn place(target: &Target) -> String {
    format!(
        "{} {}/{}",
        target.resource.api.plural,
        target.namespace.as_deref().unwrap_or("-"),
        target.name
    )
}

impl Cluster for FakeCluster {
    fn discover(
        &self,
        group: &str,
        _version: Option<&str>,
        kind: &str,
    ) -> Result<Resource, ClusterError> {
        self.calls
            .borrow_mut()
            .push(format!("DISCOVER {kind}.{group}"));
        self.discoverable
            .iter()
            .find(|r| r.api.group == group && r.api.kind == kind)
            .cloned()
            .ok_or_else(|| ClusterError::UnknownKind {
                api_version: group.to_string(),
                kind: kind.to_string(),
            })
    }

    fn apply(
        &self,
        target: &Target,
        body: &Value,
        params: &PatchParams,
    ) -> Result<Value, ClusterError> {
        let flags = format!(
            "manager={} force={} dryRun={}",
            params.field_manager.as_deref().unwrap_or_default(),
            params.force,
            params.dry_run
        );
        self.record(format!("PATCH {} {flags}", place(target)), &target.name)?;
        if !params.dry_run {
            self.insert(&target.resource, target.namespace.as_deref(), body.clone());
        }
        Ok(body.clone())
    }

    fn get(&self, target: &Target) -> Result<Option<Value>, ClusterError> {
        self.record(format!("GET {}", place(target)), &target.name)?;
        if let Some(answers) = self.gets.borrow_mut().get_mut(&target.name) {
            let answer = if answers.len() > 1 {
                answers.pop_front()
            } else {
                answers.front().cloned()
            };
            return Ok(answer);
        }
        let key = key(&target.resource, target.namespace.as_deref(), &target.name);
        Ok(self.objects.borrow().get(&key).cloned())
    }

    fn list(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<Vec<DynamicObject>, ClusterError> {
        self.calls.borrow_mut().push(format!(
            "LIST {} {} {}",
            resource.api.plural,
            namespace.unwrap_or("-"),
            params.label_selector.as_deref().unwrap_or_default()
        ));
        // Like the real server, filters by the label selector; the fake understands `k=v`.
        let (label, value) = params
            .label_selector
            .as_deref()
            .and_then(|s| s.split_once('='))
            .unwrap_or_default();
        Ok(self
            .objects
            .borrow()
            .iter()
            .filter(|((plural, ns, _), _)| {
                *plural == resource.api.plural
                    && (namespace.is_none() || ns.as_deref() == namespace)
            })
            .filter(|(_, body)| label.is_empty() || body["metadata"]["labels"][label] == value)
            .filter_map(|(_, body)| serde_json::from_value(body.clone()).ok())
            .collect())
    }

    fn delete(&self, target: &Target, dry_run: bool) -> Result<(), ClusterError> {
        self.record(
            format!("DELETE {} dryRun={dry_run}", place(target)),
            &target.name,
        )?;
        if !dry_run {
            let key = key(&target.resource, target.namespace.as_deref(), &target.name);
            self.objects.borrow_mut().remove(&key);
        }
        Ok(())
    }
}

/// A resource as discovery would describe it.
pub fn resource(api_version: &str, kind: &str, plural: &str, namespaced: bool) -> Resource {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    Resource {
        api: ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: api_version.into(),
            kind: kind.into(),
            plural: plural.into(),
        },
        namespaced,
    }
}
