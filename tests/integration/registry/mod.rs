//! Real OCI registries, and servers that misbehave, for the tests of pushing and pulling plugins
//! as Wasm OCI artifacts.
//!
//! The registry is CNCF distribution 2.8 (Debian's `docker-registry`), the reference
//! implementation most registries follow, run as a child process on a loopback port with its
//! own storage in a temp folder. Two independent clients check the host against it: `wkg`
//! (wasm-pkg-tools) for Wasm artifacts, and `skopeo` for an ordinary container image. The
//! registry speaks plain HTTP: distribution 2.8 serves htpasswd basic auth over HTTP without
//! complaint, so the tests need no certificate.
//!
//! The tools are not optional: CI installs them with `.ci/install-deps` (run by `make deps`,
//! which `make test` runs), and a test that cannot find one fails saying so rather than
//! passing without having run.

mod harness;
mod host;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use std::{env, fs};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::support::Run;

/// Where Debian's `docker-registry` package puts the registry.
const DOCKER_REGISTRY: &str = "/usr/bin/docker-registry";
/// The version of `wkg` that `.ci/install-deps` installs, whose flags the helpers use.
const WKG_VERSION: &str = "0.16.1";
/// How long a registry may take to answer its first request: generous, as CI runs the tests
/// beside a build.
const STARTUP_DEADLINE: Duration = Duration::from_secs(30);
/// Reads and writes of the harness's own HTTP requests give up after this, so that a broken
/// server fails a test instead of hanging it.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The path of a tool the registry tests need, or a panic that says how to install it: CI
/// installs every one, so a missing tool is a broken machine, not a reason to skip.
#[track_caller]
fn require_tool(name: &str, candidates: &[PathBuf]) -> PathBuf {
    let on_path = env::var_os("PATH")
        .map(|path| {
            env::split_paths(&path)
                .map(|dir| dir.join(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    match candidates
        .iter()
        .chain(&on_path)
        .find(|path| path.is_file())
    {
        Some(path) => path.clone(),
        None => panic!(
            "`{name}` is missing (looked in {candidates:?} and PATH): the registry tests need \
             it. Run `.ci/install-deps` as root (or `make deps`), which installs \
             docker-registry, apache2-utils (htpasswd), skopeo and wkg {WKG_VERSION}."
        ),
    }
}

/// A CNCF distribution registry on `127.0.0.1`, with its storage in a temp folder; stopped
/// (killed and reaped) when dropped.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    host: String,
    credentials: Option<(String, String)>,
    /// The config, the htpasswd file, the storage and the registry's log.
    dir: tempfile::TempDir,
}

impl Registry {
    /// A registry anyone may push to and pull from, as a local or CI registry often is.
    pub fn anonymous() -> Self {
        Self::start(None)
    }

    /// A registry that refuses anonymous requests (401 with a `Basic` challenge) and accepts
    /// `user`/`password`: distribution's htpasswd auth, the simplest auth that makes a client
    /// answer a challenge. Over plain HTTP, which distribution 2.8 allows.
    pub fn with_basic_auth(user: &str, password: &str) -> Self {
        Self::start(Some((user.to_string(), password.to_string())))
    }

    fn start(credentials: Option<(String, String)>) -> Self {
        let registry = require_tool("docker-registry", &[PathBuf::from(DOCKER_REGISTRY)]);
        let dir = tempfile::tempdir().expect("temp dir");
        let auth = match &credentials {
            None => String::new(),
            Some((user, password)) => {
                // distribution only accepts bcrypt (`-B`) entries.
                let htpasswd = require_tool("htpasswd", &[]);
                let output = Command::new(htpasswd)
                    .args(["-Bbn", user, password])
                    .output()
                    .expect("run htpasswd");
                assert!(
                    output.status.success(),
                    "htpasswd -Bbn: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
                let file = dir.path().join("htpasswd");
                fs::write(&file, &output.stdout).expect("write the htpasswd file");
                format!(
                    "auth:\n  htpasswd:\n    realm: mathison-test\n    path: {}\n",
                    yaml_string(&file)
                )
            }
        };
        // The port is free when picked and handed to the registry a moment later; should
        // another process take it in between, the registry exits and one more port is tried.
        let expected = if credentials.is_some() { 401 } else { 200 };
        let log_path = dir.path().join("registry.log");
        let mut failure = String::new();
        for _ in 0..2 {
            let host = format!("127.0.0.1:{}", free_port());
            let config = dir.path().join("config.yml");
            fs::write(
                &config,
                format!(
                    "version: 0.1\n\
                     log:\n  level: info\n\
                     storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
                     http:\n  addr: {host}\n  secret: mathison-test-secret\n\
                     {auth}",
                    storage = yaml_string(&dir.path().join("storage")),
                ),
            )
            .expect("write the registry's config");
            let log = fs::File::create(&log_path).expect("create the registry's log");
            let mut child = Command::new(&registry)
                .arg("serve")
                .arg(&config)
                .env_clear()
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone a file handle"))
                .stderr(log)
                .spawn()
                .expect("start docker-registry");
            match wait_until_ready(&mut child, &host, expected) {
                Ok(()) => {
                    return Self {
                        child,
                        host,
                        credentials,
                        dir,
                    };
                }
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = fs::read_to_string(&log_path).unwrap_or_default();
                    failure = format!("{why}; its log:\n{log}");
                }
            }
        }
        panic!("the registry did not start: {failure}");
    }

    /// `127.0.0.1:PORT`: the registry part of a reference.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `HOST/name`, e.g. `registry.reference("plugins/postgres:1.0")`: a reference without a
    /// scheme, as `wkg` and `docker` write them.
    pub fn reference(&self, name: &str) -> String {
        format!("{}/{name}", self.host)
    }

    /// The user and password of a registry made by [`with_basic_auth`](Self::with_basic_auth).
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(user, password)| (user.as_str(), password.as_str()))
    }

    /// Writes `DIR/config.json` in the Docker client's format (`{"auths": {"127.0.0.1:PORT":
    /// {"auth": base64("user:password")}}}`), the file registry clients read credentials from
    /// (`$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`); `wkg` does when given
    /// no `-u`/`-p`. Returns the file's path.
    pub fn write_docker_config(&self, dir: &Path) -> PathBuf {
        let (user, password) = self
            .credentials()
            .expect("a registry with credentials (Registry::with_basic_auth)");
        let auth = STANDARD.encode(format!("{user}:{password}"));
        let config = json!({ "auths": { self.host.as_str(): { "auth": auth } } });
        fs::create_dir_all(dir).expect("create the Docker config folder");
        let path = dir.join("config.json");
        fs::write(&path, config.to_string()).expect("write config.json");
        path
    }

    /// `GET path` on the registry over HTTP/1.0, with the registry's credentials if it has
    /// any, and `accept` as the `Accept` header (registries choose a manifest's format by it).
    pub fn get(&self, path: &str, accept: &str) -> HttpResponse {
        let authorization = self.credentials().map(|(user, password)| {
            format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
        });
        let mut headers = vec![("Accept", accept)];
        if let Some(authorization) = &authorization {
            headers.push(("Authorization", authorization));
        }
        http_get(&self.host, path, &headers)
            .unwrap_or_else(|error| panic!("GET {path} on {}: {error}", self.host))
    }

    /// Where the registry stores the blob `sha256:HEX` on disk (distribution's filesystem
    /// layout), to damage it behind the registry's back: the registry serves what the file
    /// holds, so a client that does not check digests would take it.
    /// The manifest `repository:tag` as the registry serves it: its bytes and its JSON.
    pub fn manifest(&self, repository: &str, tag: &str) -> (Vec<u8>, serde_json::Value) {
        let response = self.get(
            &format!("/v2/{repository}/manifests/{tag}"),
            "application/vnd.oci.image.manifest.v1+json",
        );
        assert_eq!(
            response.status,
            200,
            "GET the manifest of {repository}:{tag}; registry log:\n{}",
            self.log()
        );
        let json = serde_json::from_slice(&response.body).expect("a JSON manifest");
        (response.body, json)
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest
            .strip_prefix("sha256:")
            .unwrap_or_else(|| panic!("a sha256 digest: {digest}"));
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// What the registry has logged (one line per request, with its status), for failure
    /// messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `GET /v2/` on `host` until the registry answers it as a registry of this kind would:
/// 200 when anonymous, 401 with auth. An answer while `child` has exited came from whoever
/// else took the port.
fn wait_until_ready(child: &mut Child, host: &str, expected: u16) -> Result<(), String> {
    let deadline = Instant::now() + STARTUP_DEADLINE;
    let mut exited = || {
        child
            .try_wait()
            .expect("poll docker-registry")
            .map(|status| format!("docker-registry exited ({status})"))
    };
    loop {
        if let Some(exit) = exited() {
            return Err(exit);
        }
        if let Ok(response) = http_get(host, "/v2/", &[]) {
            if let Some(exit) = exited() {
                return Err(exit);
            }
            if response.status == expected
                && response.header("docker-distribution-api-version") == Some("registry/2.0")
            {
                return Ok(());
            }
            return Err(format!(
                "GET /v2/ on {host} answered {} (expected {expected})",
                response.status
            ));
        }
        if Instant::now() > deadline {
            return Err(format!("no answer on {host} within {STARTUP_DEADLINE:?}"));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A port nothing listens on at the moment it is returned.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// `path` as a YAML double-quoted string (JSON's string syntax is YAML's).
fn yaml_string(path: &Path) -> String {
    serde_json::to_string(path.to_str().expect("a UTF-8 temp path")).expect("a JSON string")
}

/// `sha256:HEX` of `bytes`, an OCI digest.
pub fn digest(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// Pushes a minimal ordinary container image (one empty gzipped tar layer, an image config, an
/// image manifest: no Wasm anywhere) as `REGISTRY/repository:tag` with skopeo, an OCI client
/// independent of the host, so that tests can check how the host treats an artifact that is
/// not a plugin. Returns the manifest's digest.
///
/// The image is written as an OCI image layout folder and copied from there: skopeo needs no
/// daemon and no network beyond the registry.
pub fn push_container_image(registry: &Registry, repository: &str, tag: &str) -> String {
    let skopeo = require_tool("skopeo", &[]);
    let home = tempfile::tempdir().expect("temp dir");
    let layout = home.path().join("image");
    let manifest_digest = write_container_image(&layout, tag);
    let mut command = Command::new(skopeo);
    // skopeo runs with a temp HOME (no user's auth file or containers config), and
    // `--insecure-policy` stands for /etc/containers/policy.json: the source is our own folder.
    // `--preserve-digests` makes skopeo push the image as written (it would otherwise gzip an
    // uncompressed layer, say, and rewrite the manifest), so the digest returned is the one
    // in the registry.
    command
        .env_clear()
        .env("PATH", env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", home.path())
        .env("TMPDIR", home.path())
        .args([
            "--insecure-policy",
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ]);
    match registry.credentials() {
        Some((user, password)) => command.arg(format!("--dest-creds={user}:{password}")),
        None => command.arg("--dest-no-creds"),
    };
    let source = format!("oci:{}:{tag}", layout.to_str().expect("a UTF-8 temp path"));
    let destination = format!(
        "docker://{}",
        registry.reference(&format!("{repository}:{tag}"))
    );
    let output = command
        .args([&source, &destination])
        .output()
        .expect("run skopeo");
    assert!(
        output.status.success(),
        "skopeo copy {source} {destination}:\n{}\nregistry log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        registry.log()
    );
    manifest_digest
}

/// Writes an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/`) holding one image
/// tagged `tag`, and returns its manifest's digest. The layer is an empty tar (two 512-byte
/// zero blocks, the end-of-archive marker), gzipped as most images' layers are.
fn write_container_image(layout: &Path, tag: &str) -> String {
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).expect("create the layout's blobs folder");
    let write_blob = |bytes: &[u8]| {
        let digest = digest(bytes);
        fs::write(blobs.join(&digest["sha256:".len()..]), bytes).expect("write a blob");
        json!({ "digest": digest, "size": bytes.len() })
    };
    let tar = vec![0u8; 1024];
    let mut layer_descriptor = write_blob(&gzip_stored(&tar));
    layer_descriptor["mediaType"] = json!("application/vnd.oci.image.layer.v1.tar+gzip");
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Cmd": ["/bin/true"] },
        // A layer's diff ID is the digest of its uncompressed tar.
        "rootfs": { "type": "layers", "diff_ids": [digest(&tar)] },
    });
    let mut config_descriptor = write_blob(config.to_string().as_bytes());
    config_descriptor["mediaType"] = json!("application/vnd.oci.image.config.v1+json");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_descriptor,
        "layers": [layer_descriptor],
    });
    let mut manifest_descriptor = write_blob(manifest.to_string().as_bytes());
    manifest_descriptor["mediaType"] = json!("application/vnd.oci.image.manifest.v1+json");
    manifest_descriptor["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [manifest_descriptor],
    });
    fs::write(layout.join("index.json"), index.to_string()).expect("write index.json");
    fs::write(
        layout.join("oci-layout"),
        json!({ "imageLayoutVersion": "1.0.0" }).to_string(),
    )
    .expect("write oci-layout");
    manifest_descriptor["digest"]
        .as_str()
        .expect("a digest")
        .to_string()
}

/// `bytes` (at most 65,535 of them) as a gzip member of one stored, i.e. uncompressed, deflate
/// block: a valid gzip file made without a compressor.
fn gzip_stored(bytes: &[u8]) -> Vec<u8> {
    let length = u16::try_from(bytes.len()).expect("at most 64 KiB in one stored block");
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    // Magic, deflate, no flags, no mtime, no extra flags, unknown OS; then a final stored block.
    let mut gzip = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1];
    gzip.extend_from_slice(&length.to_le_bytes());
    gzip.extend_from_slice(&(!length).to_le_bytes());
    gzip.extend_from_slice(bytes);
    gzip.extend_from_slice(&(!crc).to_le_bytes());
    gzip.extend_from_slice(&u32::from(length).to_le_bytes());
    gzip
}

/// The `wkg` binary (wasm-pkg-tools) in a clean environment of its own: a temp `HOME`, and
/// `DOCKER_CONFIG` and the XDG folders inside it, so that it reads neither the developer's
/// Docker credentials nor their wkg config, and tests can give it a `config.json` of their
/// own (`HOME/.docker`, see [`Registry::write_docker_config`]).
#[derive(Debug)]
pub struct Wkg {
    binary: PathBuf,
    home: tempfile::TempDir,
}

impl Wkg {
    /// `target/tools/bin/wkg` as `.ci/install-deps` installs it (the pinned version), else
    /// `wkg` on PATH.
    pub fn new() -> Self {
        let installed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/bin/wkg");
        Self {
            binary: require_tool("wkg", &[installed]),
            home: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Where `wkg` reads Docker credentials from: `HOME/.docker`.
    pub fn docker_config_dir(&self) -> PathBuf {
        self.home.path().join(".docker")
    }

    /// `wkg` with only PATH kept from the test's environment and the rest pointing into its
    /// temp HOME (the host's tests likewise run the host with `env_clear()`).
    pub fn command(&self) -> Command {
        let home = self.home.path();
        let mut command = Command::new(&self.binary);
        command
            .env_clear()
            .env("PATH", env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("DOCKER_CONFIG", home.join(".docker"))
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .current_dir(home);
        command
    }

    /// Runs `wkg oci SUBCOMMAND ...` against `registry`, which it reaches over plain HTTP
    /// (`--insecure HOST:PORT`; wkg otherwise speaks only HTTPS), as `credentials` (`-u`/`-p`;
    /// with `None`, wkg looks in its Docker config and else goes anonymous).
    pub fn oci(
        &self,
        registry: &Registry,
        subcommand: &str,
        args: &[&str],
        credentials: Option<(&str, &str)>,
    ) -> Run {
        let mut command = self.command();
        command.args(["oci", subcommand, "--insecure", registry.host()]);
        if let Some((user, password)) = credentials {
            command.args(["-u", user, "-p", password]);
        }
        let run = Run::from(command.args(args).output().expect("run wkg"));
        if run.code != Some(0) {
            eprintln!(
                "wkg oci {subcommand} {args:?} exited {:?} ({}; .ci/install-deps pins wkg {WKG_VERSION}):\n{}",
                run.code,
                self.binary.display(),
                run.stderr
            );
        }
        run
    }
}

/// `wkg oci push REFERENCE FILE` with the registry's own credentials, if it has any:
/// `reference` is `HOST:PORT/repository:tag`, as [`Registry::reference`] makes.
pub fn wkg_push(registry: &Registry, reference: &str, file: &Path) -> Run {
    let file = file.to_str().expect("a UTF-8 path");
    Wkg::new().oci(registry, "push", &[reference, file], registry.credentials())
}

/// `wkg oci pull REFERENCE -o OUT` with the registry's own credentials, if it has any.
pub fn wkg_pull(registry: &Registry, reference: &str, out: &Path) -> Run {
    let out = out.to_str().expect("a UTF-8 path");
    Wkg::new().oci(
        registry,
        "pull",
        &[reference, "-o", out],
        registry.credentials(),
    )
}

/// An HTTP response as the harness reads it.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// `GET path` on `host` over HTTP/1.0, so the server closes the connection after its answer
/// and the body is everything that follows the head. No client library: the harness must not
/// share code with the client under test.
pub fn http_get(host: &str, path: &str, headers: &[(&str, &str)]) -> io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes)?;
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let end = bytes
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(|| invalid("no end of the response's head"))?;
    let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid("no status line"))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body: bytes[end + 4..].to_vec(),
    })
}

/// A server whose accept thread stops when it is dropped: dropping sets the flag and then
/// connects once to wake the blocking `accept`, so no thread outlives the server (and no
/// polling loop is needed).
#[derive(Debug)]
struct Acceptor {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Acceptor {
    fn start(mut on_connection: impl FnMut(TcpStream) + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(stream) = stream {
                    on_connection(stream);
                }
            }
        });
        Self {
            address,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // The wake-up connection; if it cannot be made, the thread is left blocked rather
        // than this drop (it dies with the test process).
        if TcpStream::connect(self.address).is_ok()
            && let Some(thread) = self.thread.take()
        {
            let _ = thread.join();
        }
    }
}

/// A server that accepts connections and never answers: a registry that hangs, for the
/// host's timeouts. The connections are held open (not closed, which a client would see as an
/// answer of sorts) until the server is dropped.
#[derive(Debug)]
pub struct HangingServer {
    acceptor: Acceptor,
    connections: Arc<Mutex<Vec<TcpStream>>>,
}

impl HangingServer {
    pub fn start() -> Self {
        let connections = Arc::new(Mutex::new(Vec::new()));
        let held = Arc::clone(&connections);
        let acceptor = Acceptor::start(move |stream| held.lock().expect("lock").push(stream));
        Self {
            acceptor,
            connections,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.acceptor.address.to_string()
    }

    /// How many connections it has accepted (so a test can tell a timeout from a refusal).
    pub fn connections(&self) -> usize {
        self.connections.lock().expect("lock").len()
    }
}

impl Drop for HangingServer {
    fn drop(&mut self) {
        for stream in self.connections.lock().expect("lock").drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// A server that answers every HTTP request `200 OK`, `Content-Type: application/json`, with
/// a body that is not JSON (nor UTF-8): a registry, or a proxy in front of one, gone wrong.
/// One request per connection (`Connection: close`); each connection has a thread that ends
/// with it, or after 10 s without a request.
#[derive(Debug)]
pub struct GarbageServer {
    acceptor: Acceptor,
    requests: Arc<Mutex<Vec<String>>>,
}

/// What [`GarbageServer`] answers.
pub const GARBAGE: &[u8] = b"\x00\xff\xfe<html>this is not JSON {\"schemaVersion\": </html>\n";

impl GarbageServer {
    pub fn start() -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        let acceptor = Acceptor::start(move |stream| {
            let recorded = Arc::clone(&recorded);
            thread::spawn(move || answer_with_garbage(stream, &recorded));
        });
        Self { acceptor, requests }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.acceptor.address.to_string()
    }

    /// The request lines answered so far (`GET /v2/ HTTP/1.1`, ...).
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }
}

/// Reads one request (its body too, so closing does not reset the connection under the
/// client), records its request line, and answers it with [`GARBAGE`].
fn answer_with_garbage(stream: TcpStream, recorded: &Mutex<Vec<String>>) -> Option<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut length = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    io::copy(&mut reader.by_ref().take(length), &mut io::sink()).ok()?;
    let request_line = request_line.trim_end().to_string();
    let head_only = request_line.starts_with("HEAD ");
    recorded.lock().expect("lock").push(request_line);
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        GARBAGE.len()
    );
    let mut writer = stream;
    writer.write_all(head.as_bytes()).ok()?;
    if !head_only {
        writer.write_all(GARBAGE).ok()?;
    }
    writer.shutdown(Shutdown::Write).ok()
}
