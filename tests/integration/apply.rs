//! `apply` and `diff` end to end: the real binary against a fake Kubernetes API server on
//! 127.0.0.1 that records every request and answers from a script. These tests own the
//! requests sent and what the user sees; what is planned without a cluster (the ApplySet, the
//! request text, prune candidates, readiness, diff masking) is unit-tested in `host/src/apply`.
//! No real cluster runs here; the one test that needs one is ignored unless KUBECONFIG points
//! at a cluster.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{HOSTILE, Host, POSTGRES, REDIS, Run};

/// One request the fake API server received.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    /// Percent-decoded.
    query: String,
    content_type: String,
    body: String,
}

impl Request {
    fn line(&self) -> String {
        format!("{} {}?{}", self.method, self.path, self.query)
    }
}

type Script = dyn Fn(&Request) -> (u16, Value) + Send + Sync;

/// A Kubernetes API server as far as the client can tell: HTTP/1.1 with keep-alive on
/// 127.0.0.1, answers from `script`.
struct FakeApi {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl FakeApi {
    fn start(script: impl Fn(&Request) -> (u16, Value) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let recorded = Arc::clone(&requests);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (recorded, script) = (Arc::clone(&recorded), Arc::clone(&script));
                thread::spawn(move || serve(stream, &recorded, &*script));
            }
        });
        Self { port, requests }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("lock").clone()
    }

    fn lines(&self) -> Vec<String> {
        self.requests().iter().map(Request::line).collect()
    }

    /// A kubeconfig in `host`'s folder whose only context is this server.
    fn kubeconfig(&self, host: &Host) -> PathBuf {
        let path = host.path("kubeconfig.yaml");
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\n\
             clusters: [{{name: fake, cluster: {{server: 'http://127.0.0.1:{}'}}}}]\n\
             users: [{{name: fake, user: {{}}}}]\n\
             contexts: [{{name: fake, context: {{cluster: fake, user: fake}}}}]\n",
            self.port
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }
}

fn serve(stream: TcpStream, recorded: &Mutex<Vec<Request>>, script: &Script) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default();
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let (mut length, mut content_type) = (0, String::new());
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "content-type" => content_type = value.trim().to_string(),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request = Request {
            method,
            path: path.to_string(),
            query: percent_decode(query),
            content_type,
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        recorded.lock().expect("lock").push(request.clone());
        let (code, answer) = script(&request);
        let text = match answer {
            Value::String(text) => text,
            json => json.to_string(),
        };
        let response = format!(
            "HTTP/1.1 {code} Fake\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = text
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn status(code: u16, reason: &str, message: &str, details: Value) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "code": code, "reason": reason, "message": message, "details": details}),
    )
}

/// An empty cluster that accepts everything: GETs find nothing, applies return what was sent.
fn empty_cluster(request: &Request) -> (u16, Value) {
    match request.method.as_str() {
        "PATCH" => (
            200,
            serde_json::from_str(&request.body).expect("JSON apply body"),
        ),
        "GET"
            if request.query.contains("labelSelector")
                || request.query.contains("fieldSelector") =>
        {
            (
                200,
                json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": []}),
            )
        }
        "DELETE" => (
            200,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
        ),
        _ => status(404, "NotFound", "not found", json!({})),
    }
}

fn apply(host: &Host, api: &FakeApi, extra: &[&str]) -> Run {
    let kubeconfig = api.kubeconfig(host);
    let mut args = vec!["apply", "-p", POSTGRES, "-p", REDIS, "--kubeconfig"];
    args.push(kubeconfig.to_str().expect("utf-8 path"));
    args.extend(extra);
    host.run(&args)
}

/// The `PATCH <path>` lines a client dry run prints, in order.
fn planned_patches(host: &Host, plugins: &[&str]) -> Vec<String> {
    let mut args = vec!["apply", "--dry-run=client"];
    for plugin in plugins {
        args.extend(["-p", plugin]);
    }
    let text = host.run(&args).success().stdout;
    text.lines()
        .filter_map(|line| line.strip_prefix("# PATCH "))
        .map(|line| format!("PATCH {}", line.split('?').next().unwrap_or_default()))
        .collect()
}

#[test]
fn client_dry_run_prints_the_requests_without_a_cluster() {
    let host = Host::new();
    // No kubeconfig anywhere: connecting would fail.
    let run = host
        .run(&[
            "apply",
            "-p",
            POSTGRES,
            "-p",
            REDIS,
            "--dry-run=client",
            "--prune",
            "--wait",
        ])
        .success();
    assert!(
        run.stderr
            .contains("note: --prune and --wait need the cluster; a client dry run skips them\n"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.starts_with("---\n# PATCH "), "{}", run.stdout);
    let patches = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("# PATCH "))
        .count();
    assert_eq!(patches, 12, "parent + 11 objects:\n{}", run.stdout);
}

#[test]
fn apply_sends_server_side_applies_in_install_order_under_our_field_manager() {
    let host = Host::new();
    let api = FakeApi::start(empty_cluster);
    let run = apply(&host, &api, &[]).success();
    let requests = api.requests();
    assert_eq!(
        requests[0].line(),
        "GET /api/v1/namespaces/mathison-system/secrets/applyset-mathison?"
    );
    let patches: Vec<&Request> = requests.iter().filter(|r| r.method == "PATCH").collect();
    let sent: Vec<String> = patches
        .iter()
        .map(|r| format!("PATCH {}", r.path))
        .collect();
    assert_eq!(sent, planned_patches(&host, &[POSTGRES, REDIS]));
    for patch in &patches {
        assert_eq!(patch.content_type, "application/apply-patch+yaml");
        assert_eq!(
            patch.query,
            "&fieldManager=mathison-host",
            "{}",
            patch.line()
        );
    }
    assert_eq!(requests.len(), patches.len() + 1, "{:#?}", api.lines());
    assert!(
        run.stdout
            .contains("applied StatefulSet mathison-system/redis\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn server_dry_run_and_force_reach_every_request_and_skip_the_wait() {
    let host = Host::new();
    let api = FakeApi::start(empty_cluster);
    let run = apply(
        &host,
        &api,
        &["--dry-run=server", "--force-conflicts", "--wait"],
    )
    .success();
    let requests = api.requests();
    let patches: Vec<&Request> = requests.iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(patches.len(), 12);
    // The parent's GET and the applies: no StatefulSet is polled.
    assert_eq!(requests.len(), 13, "{:#?}", api.lines());
    for patch in &patches {
        assert_eq!(
            patch.query,
            "&dryRun=All&force=true&fieldManager=mathison-host",
            "{}",
            patch.line()
        );
    }
    assert!(run.stdout.contains("(server dry run)"), "{}", run.stdout);
}

#[test]
fn nothing_is_sent_when_the_render_fails() {
    let host = Host::new();
    let api = FakeApi::start(empty_cluster);
    apply(&host, &api, &["--set", "redis.persistence.size=10 GB"])
        .failure("redis (mathison_plugin_redis.wasm): invalid configuration");
    assert!(api.requests().is_empty(), "{:#?}", api.lines());
}

fn statefulset(name: &str, ready: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": name, "namespace": "mathison-system", "generation": 1},
           "spec": {"replicas": 1, "volumeClaimTemplates": [{"metadata": {"name": "data"}}]},
           "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": ready,
                      "currentRevision": "r1", "updateRevision": "r1"}})
}

fn sts_name(request: &Request) -> Option<&str> {
    request
        .path
        .strip_prefix("/apis/apps/v1/namespaces/mathison-system/statefulsets/")
}

#[test]
fn wait_follows_statefulsets_until_ready_with_progress_lines() {
    let host = Host::new();
    let (polls, claim_reads) = (Arc::new(Mutex::new(0)), Arc::new(Mutex::new(0)));
    let api = FakeApi::start(
        move |request| match (request.method.as_str(), sts_name(request)) {
            ("GET", Some(name)) => {
                let mut polls = polls.lock().expect("lock");
                *polls += 1;
                // Each StatefulSet is first seen not ready, then ready.
                (200, statefulset(name, i64::from(*polls > 2)))
            }
            ("GET", None) if request.path.contains("/persistentvolumeclaims/") => {
                let mut reads = claim_reads.lock().expect("lock");
                *reads += 1;
                // postgres's claim is read first: pending once, then bound.
                let phase = if *reads == 1 { "Pending" } else { "Bound" };
                (
                    200,
                    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                             "metadata": {"name": "x"}, "status": {"phase": phase}}),
                )
            }
            _ => empty_cluster(request),
        },
    );
    let run = apply(&host, &api, &["--wait", "--wait-timeout", "1m"]).success();
    for line in [
        "StatefulSet mathison-system/postgres: waiting: 0/1 pods ready\n",
        "StatefulSet mathison-system/postgres: waiting: PersistentVolumeClaim data-postgres-0: Pending, not Bound\n",
        "StatefulSet mathison-system/postgres: ready\n",
        "StatefulSet mathison-system/redis: ready\n",
    ] {
        assert!(
            run.stderr.contains(line),
            "{line:?} missing:\n{}",
            run.stderr
        );
    }
    let lines = api.lines();
    let claims = [
        "GET /api/v1/namespaces/mathison-system/persistentvolumeclaims/data-postgres-0?",
        "GET /api/v1/namespaces/mathison-system/persistentvolumeclaims/data-redis-0?",
    ];
    for claim in claims {
        assert!(
            lines.iter().any(|l| l == claim),
            "{claim} not checked: {lines:#?}"
        );
    }
    let last_patch = lines
        .iter()
        .rposition(|l| l.starts_with("PATCH"))
        .expect("patches");
    let first_poll = lines
        .iter()
        .position(|l| l.contains("/statefulsets/") && l.starts_with("GET"))
        .expect("polls");
    assert!(
        last_patch < first_poll,
        "waited before everything was applied"
    );
}

#[test]
fn wait_times_out_naming_the_object_and_why() {
    let host = Host::new();
    let api = FakeApi::start(
        |request| match (request.method.as_str(), sts_name(request)) {
            ("GET", Some(name)) => (200, statefulset(name, 0)),
            ("GET", None) if request.path.ends_with("/pods/postgres-0") => (
                200,
                json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "postgres-0"},
            "status": {"containerStatuses": [{"name": "postgres", "ready": false, "restartCount": 0,
                "image": "pgvector/pgvector:pg16", "imageID": "",
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]}}),
            ),
            ("GET", None)
                if request
                    .query
                    .contains("involvedObject.name=data-postgres-0") =>
            {
                (
                    200,
                    json!({
            "apiVersion": "v1", "kind": "EventList", "metadata": {}, "items": [{
                "metadata": {"name": "e1", "namespace": "mathison-system"},
                "involvedObject": {"kind": "PersistentVolumeClaim", "name": "data-postgres-0"},
                "type": "Warning", "reason": "ProvisioningFailed", "message": "storageclass \"fast\" not found"}]}),
                )
            }
            _ => empty_cluster(request),
        },
    );
    let run = apply(&host, &api, &["--wait", "--wait-timeout", "1s"]).failure("not ready");
    assert_eq!(
        error_line(&run),
        "error: not ready after 1s: StatefulSet mathison-system/postgres: 0/1 pods ready; pod postgres-0: container postgres: ImagePullBackOff: Back-off pulling image; PersistentVolumeClaim data-postgres-0: ProvisioningFailed: storageclass \"fast\" not found; StatefulSet mathison-system/redis: 0/1 pods ready; pod redis-0: not created"
    );
}

/// The ApplySet id `apply` gives its members for postgres's render.
fn applyset_id(host: &Host) -> String {
    host.run(&["apply", "-p", POSTGRES, "--dry-run=client"])
        .success()
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("applyset.kubernetes.io/part-of: "))
        .expect("applyset id")
        .to_string()
}

/// A cluster where an earlier apply of postgres and redis left its set: the parent lists their
/// group-kinds, a Deployment kind since dropped and a custom resource whose CRD is gone.
fn cluster_with_a_previous_set(id: &str) -> FakeApi {
    let parent = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "applyset-mathison", "namespace": "mathison-system",
            "labels": {"applyset.kubernetes.io/id": id},
            "annotations": {"applyset.kubernetes.io/tooling": "mathison-host/0.1.0",
                "applyset.kubernetes.io/contains-group-kinds": "ConfigMap,Deployment.apps,NetworkPolicy.networking.k8s.io,Service,StatefulSet.apps,Widget.example.com"}}});
    let id = id.to_string();
    let member = move |name: &str| {
        json!({"metadata": {"name": name, "namespace": "mathison-system",
        "labels": {"applyset.kubernetes.io/part-of": id}}})
    };
    let list = |kind: &str, items: Vec<Value>| {
        (
            200,
            json!({"apiVersion": "v1", "kind": kind, "metadata": {}, "items": items}),
        )
    };
    FakeApi::start(move |request| {
        let path = request.path.as_str();
        match request.method.as_str() {
            "GET" if path.ends_with("/secrets/applyset-mathison") => (200, parent.clone()),
            "GET" if path.ends_with("/configmaps") => list(
                "ConfigMapList",
                vec![member("postgres-initdb"), member("redis-config")],
            ),
            "GET" if path.ends_with("/statefulsets") => {
                list("StatefulSetList", vec![member("postgres"), member("redis")])
            }
            "GET" if path.ends_with("/deployments") => list("DeploymentList", vec![member("gone")]),
            // Discovery knows apps (for the Deployment kind), not example.com.
            "GET" if path == "/apis" => (
                200,
                json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [{"name": "apps",
                    "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                    "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}]}),
            ),
            "GET" if path == "/apis/apps/v1" => (
                200,
                json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1",
                    "resources": [{"name": "deployments", "singularName": "deployment",
                        "namespaced": true, "kind": "Deployment",
                        "verbs": ["delete", "get", "list", "patch"]}]}),
            ),
            _ => empty_cluster(request),
        }
    })
}

fn apply_postgres(host: &Host, api: &FakeApi, extra: &[&str]) -> Run {
    let kubeconfig = api.kubeconfig(host);
    let mut args = vec!["apply", "-p", POSTGRES, "--kubeconfig"];
    args.push(kubeconfig.to_str().expect("utf-8 path"));
    args.extend(extra);
    host.run(&args)
}

/// The `contains-group-kinds` of each apply of the parent, in order.
fn parent_group_kinds(requests: &[Request]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with("/secrets/applyset-mathison"))
        .map(|r| {
            let body: Value = serde_json::from_str(&r.body).expect("JSON apply body");
            body["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"]
                .as_str()
                .expect("group-kinds")
                .to_string()
        })
        .collect()
}

const EVERY_GROUP_KIND: &str = "ConfigMap,Deployment.apps,NetworkPolicy.networking.k8s.io,Service,StatefulSet.apps,Widget.example.com";

#[test]
fn prune_deletes_this_sets_members_that_are_no_longer_rendered() {
    let host = Host::new();
    let id = applyset_id(&host);
    let api = cluster_with_a_previous_set(&id);
    let run = apply_postgres(&host, &api, &["--prune"]).success();
    let requests = api.requests();
    let lists: Vec<String> = requests
        .iter()
        .filter(|r| r.query.contains("labelSelector"))
        .map(Request::line)
        .collect();
    assert!(
        lists.contains(&format!("GET /api/v1/namespaces/mathison-system/configmaps?&labelSelector=applyset.kubernetes.io/part-of={id}")),
        "{lists:#?}"
    );
    let deletes: Vec<&Request> = requests.iter().filter(|r| r.method == "DELETE").collect();
    let deleted: Vec<String> = deletes.iter().map(|r| r.line()).collect();
    // Widget.example.com is skipped: its kind is gone from the cluster, and its objects with it.
    assert_eq!(
        deleted,
        [
            "DELETE /api/v1/namespaces/mathison-system/configmaps/redis-config?",
            "DELETE /apis/apps/v1/namespaces/mathison-system/deployments/gone?",
            "DELETE /apis/apps/v1/namespaces/mathison-system/statefulsets/redis?",
        ]
    );
    assert!(
        deletes
            .iter()
            .all(|r| r.body.contains("\"propagationPolicy\":\"Background\"")),
        "{deletes:#?}"
    );
    for line in [
        "pruned ConfigMap mathison-system/redis-config\n",
        "pruned Deployment mathison-system/gone\n",
    ] {
        assert!(run.stdout.contains(line), "{line:?}:\n{}", run.stdout);
    }
    // The parent is applied twice: before the members with old and new kinds, after the prune
    // with what it still contains.
    assert_eq!(
        parent_group_kinds(&requests),
        [
            EVERY_GROUP_KIND,
            "ConfigMap,NetworkPolicy.networking.k8s.io,Service,StatefulSet.apps"
        ]
    );
    let last_delete = requests
        .iter()
        .rposition(|r| r.method == "DELETE")
        .expect("deletes");
    assert!(
        requests[last_delete + 1..]
            .iter()
            .any(|r| r.method == "PATCH" && r.path.ends_with("/applyset-mathison"))
    );
}

#[test]
fn a_server_dry_run_prune_deletes_nothing() {
    let host = Host::new();
    let api = cluster_with_a_previous_set(&applyset_id(&host));
    let run = apply_postgres(&host, &api, &["--prune", "--dry-run=server"]).success();
    let deletes: Vec<Request> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 3, "{:#?}", api.lines());
    assert!(
        deletes
            .iter()
            .all(|r| r.body.contains("\"dryRun\":[\"All\"]")),
        "{deletes:#?}"
    );
    assert!(
        run.stdout
            .contains("pruned ConfigMap mathison-system/redis-config (server dry run)\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn without_prune_the_parent_keeps_listing_old_group_kinds() {
    let host = Host::new();
    let api = cluster_with_a_previous_set(&applyset_id(&host));
    apply_postgres(&host, &api, &[]).success();
    let requests = api.requests();
    assert_eq!(parent_group_kinds(&requests), [EVERY_GROUP_KIND]);
    assert!(
        !requests
            .iter()
            .any(|r| r.method == "DELETE" || r.query.contains("labelSelector")),
        "{:#?}",
        api.lines()
    );
}

#[test]
fn a_parent_of_another_tool_is_never_taken_over() {
    let host = Host::new();
    let api = FakeApi::start(|request| {
        if request.path.ends_with("/secrets/applyset-mathison") && request.method == "GET" {
            (
                200,
                json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "applyset-mathison", "namespace": "mathison-system",
                    "annotations": {"applyset.kubernetes.io/tooling": "kubectl/v1.33"}}}),
            )
        } else {
            empty_cluster(request)
        }
    });
    let run = apply(&host, &api, &[]).failure("refusing to take over its set");
    assert_eq!(
        error_line(&run),
        "error: Secret mathison-system/applyset-mathison exists but is not managed by mathison-host (tooling: kubectl/v1.33); refusing to take over its set"
    );
    assert_eq!(
        api.lines(),
        ["GET /api/v1/namespaces/mathison-system/secrets/applyset-mathison?"],
        "only the parent is read"
    );
}

/// Applies the hostile plugin's custom resource, a `Widget` of `example.com/v1`.
fn apply_widget(host: &Host, api: &FakeApi) -> Run {
    let kubeconfig = api.kubeconfig(host);
    host.run(&[
        "apply",
        "-p",
        HOSTILE,
        "--set",
        "hostile.behaviour=unknown-kind",
        "--allow-cluster-scoped",
        "--kubeconfig",
        kubeconfig.to_str().expect("utf-8 path"),
    ])
}

#[test]
fn unknown_kinds_are_discovered_first_and_a_missing_crd_sends_nothing() {
    let host = Host::new();
    let without_crd = FakeApi::start(empty_cluster);
    let run = apply_widget(&host, &without_crd).failure("CustomResourceDefinition");
    assert_eq!(
        error_line(&run),
        "error: cannot apply Widget mathison-system/w: the cluster does not serve Widget in example.com/v1: is its CustomResourceDefinition installed?"
    );
    assert!(
        !without_crd.requests().iter().any(|r| r.method == "PATCH"),
        "{:#?}",
        without_crd.lines()
    );

    let with_crd = FakeApi::start(|request| {
        if request.path == "/apis/example.com/v1" {
            (
                200,
                json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "example.com/v1",
                "resources": [{"name": "widgets", "singularName": "widget", "namespaced": true,
                    "kind": "Widget", "verbs": ["get", "patch"]}]}),
            )
        } else {
            empty_cluster(request)
        }
    });
    apply_widget(&host, &with_crd).success();
    let lines = with_crd.lines();
    let discovered = lines
        .iter()
        .position(|l| l == "GET /apis/example.com/v1?")
        .expect("discovery");
    let first_patch = lines
        .iter()
        .position(|l| l.starts_with("PATCH"))
        .expect("patches");
    assert!(discovered < first_patch, "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l
                .starts_with("PATCH /apis/example.com/v1/namespaces/mathison-system/widgets/w?")),
        "{lines:#?}"
    );
}

/// The one `error:` line of a failed run; only its causes (`  caused by: `) may follow it.
#[track_caller]
fn error_line(run: &Run) -> &str {
    let lines: Vec<&str> = run.stderr.lines().collect();
    let errors: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("error"))
        .collect();
    assert_eq!(errors.len(), 1, "expected one error line:\n{}", run.stderr);
    assert!(
        lines[errors[0] + 1..]
            .iter()
            .all(|l| l.starts_with("  caused by: ")),
        "only causes may follow the error:\n{}",
        run.stderr
    );
    lines[errors[0]]
}

/// Answers every apply of the postgres StatefulSet with `failure`.
fn failing(failure: (u16, Value)) -> FakeApi {
    FakeApi::start(move |request| {
        if request.method == "PATCH" && sts_name(request) == Some("postgres") {
            failure.clone()
        } else {
            empty_cluster(request)
        }
    })
}

#[test]
fn each_api_error_is_one_line_naming_the_object() {
    // The server's Status is the whole story: one line, no causes.
    let object = "error: cannot apply StatefulSet mathison-system/postgres";
    let cases = [
        (
            status(
                403,
                "Forbidden",
                "statefulsets.apps \"postgres\" is forbidden: User \"ci\" cannot patch resource \"statefulsets\"",
                json!({}),
            ),
            format!(
                "{object}: forbidden (403): statefulsets.apps \"postgres\" is forbidden: User \"ci\" cannot patch resource \"statefulsets\""
            ),
        ),
        (
            status(
                404,
                "NotFound",
                "namespaces \"mathison-system\" not found",
                json!({"name": "mathison-system", "kind": "namespaces"}),
            ),
            format!(
                "{object}: namespace not found (404): namespaces \"mathison-system\" not found; create it first"
            ),
        ),
        (
            (404, Value::String("404 page not found".into())),
            format!(
                "{object}: the cluster does not serve this kind (404): is its CustomResourceDefinition installed?"
            ),
        ),
        (
            status(
                409,
                "Conflict",
                "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: .spec.replicas",
                json!({}),
            ),
            format!(
                "{object}: conflict (409): Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: .spec.replicas; rerun with --force-conflicts to take over these fields"
            ),
        ),
        (
            status(
                422,
                "Invalid",
                "StatefulSet.apps \"postgres\" is invalid: spec.replicas: Invalid value: -1",
                json!({
                "causes": [{"reason": "FieldValueInvalid", "message": "Invalid value: -1: must be greater than or equal to 0", "field": "spec.replicas"}]}),
            ),
            format!(
                "{object}: invalid (422): spec.replicas: Invalid value: -1: must be greater than or equal to 0"
            ),
        ),
    ];
    for (failure, expected) in cases {
        let host = Host::new();
        let api = failing(failure);
        let run = apply(&host, &api, &[]).failure(&expected);
        assert_eq!(error_line(&run), expected);
        assert!(!run.stderr.contains("caused by"), "{}", run.stderr);
        let after = api
            .lines()
            .into_iter()
            .skip_while(|l| !l.contains("statefulsets/postgres"))
            .count();
        assert_eq!(
            after,
            1,
            "requests went on after the error: {:#?}",
            api.lines()
        );
    }
}

#[test]
fn an_unreachable_or_silent_server_is_one_line_with_the_clients_causes() {
    let host = Host::new();
    // A port that was just free: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let kubeconfig = host.path("unreachable.yaml");
    std::fs::write(
        &kubeconfig,
        format!("apiVersion: v1\nkind: Config\ncurrent-context: x\nclusters: [{{name: x, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\nusers: [{{name: x, user: {{}}}}]\ncontexts: [{{name: x, context: {{cluster: x, user: x}}}}]\n"),
    )
    .expect("write kubeconfig");
    let run = host
        .run(&[
            "apply",
            "-p",
            POSTGRES,
            "--kubeconfig",
            kubeconfig.to_str().expect("utf-8"),
        ])
        .failure("cannot reach the API server");
    assert_eq!(
        error_line(&run),
        format!(
            "error: cannot read Secret mathison-system/applyset-mathison: cannot reach the API server at http://127.0.0.1:{port}/"
        )
    );
    assert!(
        run.stderr
            .contains("  caused by: Connection refused (os error 111)\n"),
        "{}",
        run.stderr
    );

    let silent = FakeApi::start(|request| {
        thread::sleep(Duration::from_secs(5));
        empty_cluster(request)
    });
    let run = apply(&host, &silent, &["--request-timeout", "1s"]).failure("did not answer in time");
    assert_eq!(
        error_line(&run),
        format!(
            "error: cannot read Secret mathison-system/applyset-mathison: the API server at http://127.0.0.1:{}/ did not answer in time",
            silent.port
        )
    );
}

#[test]
fn no_configuration_is_one_line_saying_what_to_set() {
    let host = Host::new();
    let run = host
        .run(&["apply", "-p", POSTGRES])
        .failure("no cluster configuration");
    assert_eq!(
        error_line(&run),
        "error: no cluster configuration: set KUBECONFIG, pass --kubeconfig, or run inside a cluster"
    );
}

#[test]
fn kubeconfig_comes_from_the_environment_and_context_picks_the_cluster() {
    let host = Host::new();
    let api = FakeApi::start(empty_cluster);
    let kubeconfig = api.kubeconfig(&host);
    let run = host
        .command()
        .env("KUBECONFIG", &kubeconfig)
        .args(["apply", "-p", POSTGRES, "--context", "fake"])
        .output()
        .expect("run");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(!api.requests().is_empty());
    host.command()
        .env("KUBECONFIG", &kubeconfig)
        .args(["apply", "-p", POSTGRES, "--context", "missing"])
        .output()
        .map(Run::from)
        .expect("run")
        .failure("error: cannot use the kubeconfig\n  caused by: failed to load current context: missing\n");
}

#[test]
fn diff_shows_changes_against_a_server_dry_run_with_secrets_masked() {
    let host = Host::new();
    // The server's merge of redis-config equals what is live: no diff for it.
    let unchanged = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "redis-config", "namespace": "mathison-system"}, "data": {"k": "v"}});
    let api = FakeApi::start(move |request| {
        let path = request.path.as_str();
        match request.method.as_str() {
            "GET" if path.ends_with("/configmaps/mathison-connections") => (
                200,
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "mathison-connections", "namespace": "mathison-system"},
                "data": {"REDIS_URL": "redis://old:6379"}}),
            ),
            "GET" | "PATCH" if path.ends_with("/configmaps/redis-config") => {
                (200, unchanged.clone())
            }
            _ => empty_cluster(request),
        }
    });
    let kubeconfig = api.kubeconfig(&host);
    let password = host.path("pg-password");
    std::fs::write(&password, "hunter2").expect("write password");
    let run = host
        .run(&[
            "diff",
            "-p",
            POSTGRES,
            "-p",
            REDIS,
            "--kubeconfig",
            kubeconfig.to_str().expect("utf-8"),
            "--secret-input",
            &format!("postgres.postgres-password=file:{}", password.display()),
        ])
        .success();
    assert!(
        run.stdout
            .contains("--- live/v1/ConfigMap/mathison-system/mathison-connections\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("-  REDIS_URL: redis://old:6379\n"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("hunter2") && !run.stdout.contains("aHVudGVyMg"),
        "a secret leaked"
    );
    let patches: Vec<Request> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert!(
        patches
            .iter()
            .all(|r| r.query == "&dryRun=All&force=true&fieldManager=mathison-host"),
        "diff must never persist, and shows the result of taking over conflicts: {:#?}",
        api.lines()
    );
    assert!(
        !run.stdout
            .contains("/ConfigMap/mathison-system/redis-config\n"),
        "{}",
        run.stdout
    );
    let all = patches.len();
    assert!(
        run.stderr
            .contains(&format!("{} of {all} objects differ\n", all - 1)),
        "{}",
        run.stderr
    );
}

#[test]
#[ignore = "needs a cluster: set KUBECONFIG"]
fn applies_to_a_real_cluster_with_a_server_dry_run() {
    let host = Host::new();
    let kubeconfig = std::env::var("KUBECONFIG").expect("KUBECONFIG");
    host.command()
        .env("KUBECONFIG", kubeconfig)
        .args(["apply", "-p", POSTGRES, "-p", REDIS, "--dry-run=server"])
        .output()
        .map(Run::from)
        .expect("run")
        .success();
}
