//! The registry harness against itself, before the host takes part: the registries, clients
//! and misbehaving servers do what the host's tests will count on.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{
    GARBAGE, GarbageServer, HangingServer, Registry, Wkg, digest, http_get, push_container_image,
    wkg_pull, wkg_push,
};
use crate::support::POSTGRES;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

#[test]
fn wkg_pushes_a_plugin_to_an_anonymous_registry_and_pulls_it_back() {
    let registry = Registry::anonymous();
    let plugin = fs::read(POSTGRES).expect("read the postgres plugin");
    let reference = registry.reference("plugins/postgres:1.0.0");
    wkg_push(&registry, &reference, Path::new(POSTGRES)).success();

    let out = tempfile::tempdir().expect("temp dir");
    let pulled = out.path().join("postgres.wasm");
    wkg_pull(&registry, &reference, &pulled).success();
    assert!(
        fs::read(&pulled).expect("read the pulled plugin") == plugin,
        "the pulled plugin is the pushed one"
    );

    // What a Wasm OCI artifact is, as wkg (oci-wasm) pushes it: the host must read this.
    let (_, manifest) = registry.manifest("plugins/postgres", "1.0.0");
    assert_eq!(manifest["mediaType"], OCI_MANIFEST, "{manifest:#}");
    assert_eq!(
        manifest["config"]["mediaType"], "application/vnd.wasm.config.v0+json",
        "{manifest:#}"
    );
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1, "{manifest:#}");
    assert_eq!(layers[0]["mediaType"], "application/wasm", "{manifest:#}");
    assert_eq!(
        layers[0]["digest"],
        digest(&plugin).as_str(),
        "{manifest:#}"
    );
    // The harness knows where the registry keeps that layer, for tests that damage it.
    assert!(
        fs::read(registry.blob_path(&digest(&plugin))).expect("read the stored layer") == plugin,
        "the stored layer is the plugin"
    );
}

#[test]
fn a_basic_auth_registry_refuses_anonymous_clients_and_accepts_its_credentials() {
    let registry = Registry::with_basic_auth("mathison", "pa$$ word:1");
    let plugin = fs::read(POSTGRES).expect("read the postgres plugin");
    let reference = registry.reference("plugins/postgres:1.0.0");
    let out = tempfile::tempdir().expect("temp dir");
    let pulled = out.path().join("postgres.wasm");
    let pulled_arg = pulled.to_str().expect("a UTF-8 path");
    let wkg = Wkg::new();

    let anonymous_push = wkg.oci(&registry, "push", &[&reference, POSTGRES], None);
    assert_ne!(anonymous_push.code, Some(0), "an anonymous push is refused");
    assert!(
        anonymous_push.stderr.contains("code: 401"),
        "{}",
        anonymous_push.stderr
    );
    wkg_push(&registry, &reference, Path::new(POSTGRES)).success();

    let anonymous = wkg.oci(&registry, "pull", &[&reference, "-o", pulled_arg], None);
    assert_ne!(anonymous.code, Some(0), "an anonymous pull is refused");
    assert!(
        anonymous.stderr.contains("Not authorized"),
        "{}",
        anonymous.stderr
    );
    let wrong = wkg.oci(
        &registry,
        "pull",
        &[&reference, "-o", pulled_arg],
        Some(("mathison", "wrong")),
    );
    assert_ne!(wrong.code, Some(0), "a wrong password is refused");
    assert!(wrong.stderr.contains("Not authorized"), "{}", wrong.stderr);
    assert!(!pulled.exists(), "nothing was pulled");

    wkg_pull(&registry, &reference, &pulled).success();
    assert!(
        fs::read(&pulled).expect("read") == plugin,
        "pulled with -u/-p"
    );

    // The same credentials from a Docker config.json, as a user's `docker login` leaves them.
    fs::remove_file(&pulled).expect("remove");
    registry.write_docker_config(&wkg.docker_config_dir());
    wkg.oci(&registry, "pull", &[&reference, "-o", pulled_arg], None)
        .success();
    assert!(
        fs::read(&pulled).expect("read") == plugin,
        "pulled with config.json"
    );

    // The challenge a client sees first.
    let challenge = http_get(registry.host(), "/v2/", &[]).expect("GET /v2/");
    assert_eq!(challenge.status, 401);
    assert_eq!(
        challenge.header("www-authenticate"),
        Some("Basic realm=\"mathison-test\"")
    );
}

#[test]
fn skopeo_pushes_an_ordinary_container_image() {
    for registry in [
        Registry::anonymous(),
        Registry::with_basic_auth("ci", "secret"),
    ] {
        let pushed = push_container_image(&registry, "images/tool", "1.0");
        let response = registry.get("/v2/images/tool/manifests/1.0", OCI_MANIFEST);
        assert_eq!(response.status, 200, "registry log:\n{}", registry.log());
        assert_eq!(
            response.header("docker-content-digest"),
            Some(pushed.as_str()),
            "the manifest is the one written"
        );
        assert_eq!(response.header("content-type"), Some(OCI_MANIFEST));
        let manifest: Value = serde_json::from_slice(&response.body).expect("a JSON manifest");
        assert_eq!(
            manifest["config"]["mediaType"],
            "application/vnd.oci.image.config.v1+json"
        );
        assert_eq!(
            manifest["layers"][0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
    }
}

#[test]
fn the_hanging_server_never_answers_and_the_garbage_server_answers_garbage() {
    let hanging = HangingServer::start();
    let mut stream = TcpStream::connect(hanging.host()).expect("connect");
    stream
        .write_all(b"GET /v2/ HTTP/1.0\r\n\r\n")
        .expect("send a request");
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("set a timeout");
    let read = stream.read(&mut [0; 64]);
    assert!(
        matches!(&read, Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "no answer, not even a close: {read:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while hanging.connections() == 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(hanging.connections(), 1, "the connection was accepted");

    let garbage = GarbageServer::start();
    let response = http_get(&garbage.host(), "/v2/", &[]).expect("GET /v2/");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.body, GARBAGE);
    assert!(serde_json::from_slice::<Value>(&response.body).is_err());
    assert_eq!(garbage.requests(), ["GET /v2/ HTTP/1.0"]);
    // Dropping both ends their threads (the test would hang otherwise).
    drop(stream);
    drop(hanging);
    drop(garbage);
}
