//! Object-store URLs (`s3://`, `gs://`, `az://`, `abfs[s]://`, `file://`) for inputs and outputs: one place that parses them, builds each store from the standard environment (object_store's `from_env` builders) and runs its async calls to completion for the synchronous rest of pulso.
//!
//! - `file://` URLs are turned into local paths at once: they take the local code paths.
//! - Stores are built once per `scheme://authority` and shared (one connection pool each).
//! - Input objects are streamed to a file under the system temporary folder (bounded memory)
//!   the first time they are read, and read from there; error messages keep the URL.
//! - Credentials: whatever the builders read from the environment (`AWS_ACCESS_KEY_ID`,
//!   `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
//!   `AWS_ALLOW_HTTP`, `GOOGLE_APPLICATION_CREDENTIALS`, `GOOGLE_SERVICE_ACCOUNT`,
//!   `AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`, …), else the cloud's instance
//!   metadata / workload identity.

use futures::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectMeta, ObjectStore};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use thiserror::Error;

/// Schemes pulso accepts besides local paths.
pub const SCHEMES: [&str; 7] = ["s3", "s3a", "gs", "az", "abfs", "abfss", "file"];

/// A storage problem, naming the URL and what to do.
#[derive(Debug, Error)]
pub enum StorageError {
    #[error("{url}: {message}")]
    Url { url: String, message: String },
    #[error("{url}: cannot configure the object store: {source}; {hint}")]
    Config {
        url: String,
        hint: &'static str,
        source: Box<object_store::Error>,
    },
    #[error("{url}: cannot {op}: {source}{hint}")]
    Request {
        url: String,
        op: &'static str,
        hint: String,
        source: Box<object_store::Error>,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl StorageError {
    /// The underlying object-store error, if any.
    pub fn store_error(&self) -> Option<&object_store::Error> {
        match self {
            StorageError::Config { source, .. } | StorageError::Request { source, .. } => {
                Some(source.as_ref())
            }
            _ => None,
        }
    }

    /// True when the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.store_error(),
            Some(object_store::Error::NotFound { .. })
        )
    }
}

/// What to check when a request fails, by store.
fn hint_for(scheme: &str, op: &str, e: &object_store::Error) -> String {
    if matches!(e, object_store::Error::NotFound { .. }) {
        return if op == "list" {
            "; check that the bucket (or container) exists".into()
        } else {
            String::new()
        };
    }
    let creds = match scheme {
        "s3" | "s3a" => "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or an instance role), AWS_REGION, and for S3-compatible servers AWS_ENDPOINT_URL (plus AWS_ALLOW_HTTP=true for http://)",
        "gs" => "GOOGLE_APPLICATION_CREDENTIALS (or the instance's service account)",
        _ => "AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY (or a managed identity)",
    };
    format!("; check that the bucket exists and the credentials: {creds}")
}

/// True for `scheme://…` with a scheme of [`SCHEMES`] (or any other `x://`, which
/// [`parse`] then refuses with a message).
pub fn is_url(s: &str) -> bool {
    match s.split_once("://") {
        Some((scheme, _)) => {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

/// [`is_url`] for a path value (outputs and input files are carried as `PathBuf`s).
pub fn is_url_path(p: &Path) -> bool {
    p.to_str()
        .is_some_and(|s| is_url(s) && !s.starts_with("file://"))
}

/// A location on an object store.
#[derive(Clone)]
pub struct Remote {
    /// `scheme://authority/prefix` without a trailing slash, as the user wrote it.
    pub url: String,
    /// `scheme://authority`
    pub root: String,
    pub scheme: String,
    pub store: Arc<dyn ObjectStore>,
    /// The path inside the store (may be empty: the bucket's root).
    pub prefix: ObjPath,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

/// A parsed location.
#[derive(Debug, Clone)]
pub enum Location {
    Local(PathBuf),
    Remote(Remote),
}

/// `file:///a/b` → `/a/b`; anything else unchanged.
pub fn local_path(s: &str) -> Option<PathBuf> {
    let rest = s.strip_prefix("file://")?;
    let url = url::Url::parse(s).ok()?;
    url.to_file_path()
        .ok()
        .or_else(|| Some(PathBuf::from(rest)))
}

/// A path value with `file://` URLs turned into local paths (outputs, report roots).
pub fn normalize(p: PathBuf) -> PathBuf {
    match p.to_str().and_then(local_path) {
        Some(l) => l,
        None => p,
    }
}

fn stores() -> &'static Mutex<HashMap<String, Arc<dyn ObjectStore>>> {
    static S: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    S.get_or_init(Default::default)
}

/// The runtime every object-store call runs on (two worker threads: I/O bound).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pulso-store")
            .enable_all()
            .build()
            .expect("cannot start the object-store runtime")
    })
}

/// Runs an object-store future to completion (from any thread that is not a runtime worker).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    runtime().block_on(f)
}

fn build_store(scheme: &str, root: &str, url: &str) -> Result<Arc<dyn ObjectStore>, StorageError> {
    let cfg = |hint: &'static str| {
        move |source| StorageError::Config {
            url: url.to_string(),
            hint,
            source: Box::new(source),
        }
    };
    // Builders use reqwest, which needs the runtime's context even to be built.
    let _guard = runtime().enter();
    let store: Arc<dyn ObjectStore> = match scheme {
        "s3" | "s3a" => Arc::new(
            object_store::aws::AmazonS3Builder::from_env()
                .with_url(root)
                .build()
                .map_err(cfg("set AWS_REGION (and AWS_ENDPOINT_URL for S3-compatible servers)"))?,
        ),
        "gs" => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(root)
                .build()
                .map_err(cfg(
                    "set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file",
                ))?,
        ),
        "az" | "abfs" | "abfss" => Arc::new(
            object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(root)
                .build()
                .map_err(cfg(
                    "set AZURE_STORAGE_ACCOUNT_NAME (and a key, SAS token or managed identity)",
                ))?,
        ),
        other => {
            return Err(StorageError::Url {
                url: url.into(),
                message: format!(
                    "the scheme {other}:// is not supported; use s3://, gs://, az://, abfs[s]:// or file://"
                ),
            })
        }
    };
    Ok(store)
}

/// Parses a location: a local path, or an object-store URL (its store built from the environment).
pub fn parse(s: &str) -> Result<Location, StorageError> {
    if !is_url(s) {
        return Ok(Location::Local(PathBuf::from(s)));
    }
    if let Some(p) = local_path(s) {
        return Ok(Location::Local(p));
    }
    let bad = |message: String| StorageError::Url {
        url: s.to_string(),
        message,
    };
    let url = url::Url::parse(s).map_err(|e| bad(format!("not a valid URL: {e}")))?;
    let scheme = url.scheme().to_string();
    if !SCHEMES.contains(&scheme.as_str()) {
        return Err(bad(format!(
            "the scheme {scheme}:// is not supported; use s3://, gs://, az://, abfs[s]:// or file://"
        )));
    }
    let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
        return Err(bad(format!(
            "no bucket or container after {scheme}://; write {scheme}://BUCKET/PREFIX"
        )));
    };
    let authority = match url.username() {
        "" => host.to_string(),
        u => format!("{u}@{host}"),
    };
    let root = format!("{scheme}://{authority}");
    let prefix = ObjPath::from_url_path(url.path())
        .map_err(|e| bad(format!("the path is not a valid object key: {e}")))?;
    let store = {
        let mut m = stores().lock().unwrap();
        match m.get(&root) {
            Some(s) => s.clone(),
            None => {
                let st = build_store(&scheme, &root, s)?;
                m.insert(root.clone(), st.clone());
                st
            }
        }
    };
    Ok(Location::Remote(Remote {
        url: s.trim_end_matches('/').to_string(),
        root,
        scheme,
        store,
        prefix,
    }))
}

/// Parses a location that must be remote.
pub fn remote(s: &str) -> Result<Remote, StorageError> {
    match parse(s)? {
        Location::Remote(r) => Ok(r),
        Location::Local(p) => Err(StorageError::Url {
            url: s.into(),
            message: format!(
                "expected an object-store URL, got the local path {}",
                p.display()
            ),
        }),
    }
}

impl Remote {
    /// `prefix/rel` as a store path.
    pub fn path(&self, rel: &str) -> ObjPath {
        let mut p = self.prefix.clone();
        for part in rel.split('/').filter(|s| !s.is_empty()) {
            p = p.child(part);
        }
        p
    }

    /// The URL of a store path.
    pub fn url_of(&self, p: &ObjPath) -> String {
        format!("{}/{}", self.root, p.as_ref())
    }

    /// `p` relative to this location's prefix (`signals/…`), if under it.
    pub fn rel(&self, p: &ObjPath) -> Option<String> {
        let parts: Vec<_> = p.prefix_match(&self.prefix)?.collect();
        Some(
            parts
                .iter()
                .map(|s| s.as_ref())
                .collect::<Vec<_>>()
                .join("/"),
        )
    }

    fn err(
        &self,
        p: &ObjPath,
        op: &'static str,
    ) -> impl FnOnce(object_store::Error) -> StorageError {
        let url = self.url_of(p);
        let scheme = self.scheme.clone();
        move |source| StorageError::Request {
            url,
            op,
            hint: hint_for(&scheme, op, &source),
            source: Box::new(source),
        }
    }

    /// Every object under `rel` (recursive), sorted by key.
    pub fn list(&self, rel: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let p = self.path(rel);
        let mut v: Vec<ObjectMeta> = block_on(async {
            let mut s = self.store.list(Some(&p));
            let mut v = Vec::new();
            while let Some(m) = s.next().await {
                v.push(m);
            }
            v.into_iter().collect::<Result<Vec<_>, _>>()
        })
        .map_err(self.err(&p, "list"))?;
        v.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(v)
    }

    /// Objects under `rel` whose key sorts after `rel/after` (S3 `start-after`).
    pub fn list_after(&self, rel: &str, after: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let p = self.path(rel);
        let off = p.child(after);
        let mut v: Vec<ObjectMeta> = block_on(async {
            let mut s = self.store.list_with_offset(Some(&p), &off);
            let mut v = Vec::new();
            while let Some(m) = s.next().await {
                v.push(m);
            }
            v.into_iter().collect::<Result<Vec<_>, _>>()
        })
        .map_err(self.err(&p, "list"))?;
        v.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(v)
    }

    /// Names of the "folders" right under `rel`.
    pub fn list_dirs(&self, rel: &str) -> Result<Vec<String>, StorageError> {
        let p = self.path(rel);
        let r = block_on(self.store.list_with_delimiter(Some(&p))).map_err(self.err(&p, "list"))?;
        Ok(r.common_prefixes
            .iter()
            .filter_map(|c| c.filename().map(str::to_string))
            .collect())
    }

    /// The whole object at `rel` in memory (small objects: manifests, hints).
    pub fn get(&self, p: &ObjPath) -> Result<bytes::Bytes, StorageError> {
        block_on(async { self.store.get(p).await?.bytes().await }).map_err(self.err(p, "read"))
    }

    /// Streams the object to a local file (fsynced), chunk by chunk.
    pub fn download(&self, p: &ObjPath, dest: &Path) -> Result<u64, StorageError> {
        use std::io::Write;
        if let Some(d) = dest.parent() {
            std::fs::create_dir_all(d).map_err(|source| StorageError::Io {
                path: d.into(),
                source,
            })?;
        }
        let io = |source| StorageError::Io {
            path: dest.into(),
            source,
        };
        let mut f = std::io::BufWriter::new(std::fs::File::create(dest).map_err(io)?);
        let n = block_on(async {
            let mut s = self.store.get(p).await?.into_stream();
            let mut n = 0u64;
            while let Some(chunk) = s.next().await {
                let chunk = chunk?;
                n += chunk.len() as u64;
                f.write_all(&chunk)
                    .map_err(|e| object_store::Error::Generic {
                        store: "local",
                        source: Box::new(e),
                    })?;
            }
            Ok::<u64, object_store::Error>(n)
        })
        .map_err(self.err(p, "read"))?;
        let f = f.into_inner().map_err(|e| io(e.into_error()))?;
        f.sync_all().map_err(io)?;
        Ok(n)
    }

    /// Uploads a local file: one PUT when small, a streamed multipart upload (16 MiB parts,
    /// at most 4 in flight) when large.
    pub fn upload(&self, src: &Path, p: &ObjPath) -> Result<(), StorageError> {
        use std::io::Read;
        const PART: usize = 16 << 20;
        let io = |source| StorageError::Io {
            path: src.into(),
            source,
        };
        let mut f = std::fs::File::open(src).map_err(io)?;
        let len = f.metadata().map_err(io)?.len();
        if len <= PART as u64 {
            let mut buf = Vec::with_capacity(len as usize);
            f.read_to_end(&mut buf).map_err(io)?;
            block_on(self.store.put(p, buf.into())).map_err(self.err(p, "write"))?;
            return Ok(());
        }
        let r = block_on(async {
            let up = self.store.put_multipart(p).await?;
            let mut w = object_store::WriteMultipart::new_with_chunk_size(up, PART);
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = match f.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => {
                        let _ = w.abort().await;
                        return Err(object_store::Error::Generic {
                            store: "local",
                            source: Box::new(e),
                        });
                    }
                };
                w.wait_for_capacity(4).await?;
                w.write(&buf[..n]);
            }
            w.finish().await
        });
        r.map(|_| ()).map_err(self.err(p, "write"))
    }

    /// Writes a small object (overwriting).
    pub fn put(&self, p: &ObjPath, body: Vec<u8>) -> Result<(), StorageError> {
        block_on(self.store.put(p, body.into()))
            .map(|_| ())
            .map_err(self.err(p, "write"))
    }

    /// Creates a small object only if nothing exists at `p` (S3 `If-None-Match: *`, GCS
    /// `ifGenerationMatch=0`, Azure `If-None-Match: *`). Ok(false) when it already exists.
    pub fn put_if_absent(&self, p: &ObjPath, body: Vec<u8>) -> Result<bool, StorageError> {
        let opts = object_store::PutOptions {
            mode: object_store::PutMode::Create,
            ..Default::default()
        };
        match block_on(self.store.put_opts(p, body.into(), opts)) {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(self.err(p, "create")(e)),
        }
    }

    /// Server-side copy.
    pub fn copy(&self, from: &ObjPath, to: &ObjPath) -> Result<(), StorageError> {
        block_on(self.store.copy(from, to)).map_err(self.err(from, "copy"))
    }

    /// Deletes objects (missing ones are fine).
    pub fn delete_all(&self, paths: Vec<ObjPath>) -> Result<(), StorageError> {
        let first = paths
            .first()
            .cloned()
            .unwrap_or_else(|| self.prefix.clone());
        block_on(async {
            let s = futures::stream::iter(paths.into_iter().map(Ok)).boxed();
            let mut out = self.store.delete_stream(s);
            while let Some(r) = out.next().await {
                match r {
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })
        .map_err(self.err(&first, "delete"))
    }
}

// ---- Inputs ------------------------------------------------------------------------------------

/// The objects matching a URL glob (`s3://bucket/exports/*/mentions_*.jsonl`), as sorted URLs.
/// The listing starts at the longest prefix without a wildcard; `*` and `?` stay within one
/// `/`-separated part, `**` spans parts.
pub fn glob(pattern: &str) -> Result<Vec<String>, StorageError> {
    let r = remote(pattern)?;
    let key = r.prefix.as_ref().to_string();
    let wild = key.find(['*', '?', '[', '{']);
    let Some(w) = wild else {
        // One object: it must exist.
        return match block_on(r.store.head(&r.prefix)) {
            Ok(_) => Ok(vec![r.url_of(&r.prefix)]),
            Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(r.err(&r.prefix, "read")(e)),
        };
    };
    // `from_url_path` decoded %2A etc.; the pattern is matched on the decoded key.
    let dir = key[..w].rfind('/').map(|i| &key[..i]).unwrap_or("");
    let pat = glob::Pattern::new(&key).map_err(|e| StorageError::Url {
        url: pattern.into(),
        message: format!("not a valid glob: {e}"),
    })?;
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    let base = Remote {
        prefix: ObjPath::from(dir),
        ..r.clone()
    };
    let mut out: Vec<String> = base
        .list("")?
        .into_iter()
        .filter(|m| pat.matches_with(m.location.as_ref(), opts))
        .map(|m| r.url_of(&m.location))
        .collect();
    out.sort();
    Ok(out)
}

/// Downloaded inputs: URL → local file.
fn inputs() -> &'static Mutex<HashMap<String, PathBuf>> {
    static I: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    I.get_or_init(Default::default)
}

/// A fresh folder `pulso-KIND-PID-N` under the system temporary folder; folders of the same kind
/// left by processes that no longer exist (a killed run) are removed first.
pub fn scratch_dir(kind: &str) -> Result<PathBuf, StorageError> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = std::env::temp_dir();
    let me = std::process::id();
    let head = format!("pulso-{kind}-");
    if let Ok(rd) = std::fs::read_dir(&tmp) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(pid) = name
                .strip_prefix(&head)
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if pid != me && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = tmp.join(format!("{head}{me}-{n}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).map_err(|source| StorageError::Io {
        path: d.clone(),
        source,
    })?;
    Ok(d)
}

/// The local file to read for an input: `file` itself, or for a URL a downloaded copy (fetched
/// once per process, streamed to disk).
pub fn local_input(file: &Path) -> Result<PathBuf, StorageError> {
    let Some(url) = file.to_str().filter(|s| is_url(s)) else {
        return Ok(file.to_path_buf());
    };
    if let Some(p) = local_path(url) {
        return Ok(p);
    }
    if let Some(p) = inputs().lock().unwrap().get(url) {
        if p.is_file() {
            return Ok(p.clone());
        }
    }
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = DIR
        .get_or_init(|| scratch_dir("inputs").map_err(|e| e.to_string()))
        .clone()
        .map_err(|message| StorageError::Url {
            url: url.into(),
            message,
        })?;
    let r = remote(url)?;
    let n = inputs().lock().unwrap().len();
    let name = r.prefix.filename().unwrap_or("object").to_string();
    let dest = dir.join(format!("{n:06}-{name}"));
    r.download(&r.prefix, &dest)?;
    inputs()
        .lock()
        .unwrap()
        .insert(url.to_string(), dest.clone());
    Ok(dest)
}

/// Forgets (and deletes) the downloaded copy of an input once it is open for the last time.
pub fn release_input(file: &Path) {
    if let Some(url) = file.to_str() {
        if let Some(p) = inputs().lock().unwrap().remove(url) {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths() {
        assert!(is_url("s3://b/k"));
        assert!(is_url("file:///tmp/x"));
        assert!(!is_url("data/*.csv"));
        assert!(!is_url("/abs/path"));
        assert!(is_url_path(Path::new("gs://b/x")));
        assert!(!is_url_path(Path::new("file:///x")));
        assert_eq!(
            normalize(PathBuf::from("file:///tmp/out")),
            PathBuf::from("/tmp/out")
        );
        assert_eq!(normalize(PathBuf::from("out")), PathBuf::from("out"));
        let e = parse("http://example.com/x").unwrap_err().to_string();
        assert!(e.contains("not supported") && e.contains("s3://"), "{e}");
        let e = parse("s3:///nobucket").unwrap_err().to_string();
        assert!(e.contains("no bucket"), "{e}");
    }

    #[test]
    fn s3_locations_parse_without_network() {
        std::env::set_var("AWS_REGION", "us-east-1");
        let r = remote("s3://bucket/a/b/").unwrap();
        assert_eq!(r.root, "s3://bucket");
        assert_eq!(r.prefix.as_ref(), "a/b");
        assert_eq!(r.url, "s3://bucket/a/b");
        assert_eq!(
            r.path("_pulso/log/x.json").as_ref(),
            "a/b/_pulso/log/x.json"
        );
        assert_eq!(
            r.rel(&ObjPath::from("a/b/signals/x.parquet")).as_deref(),
            Some("signals/x.parquet")
        );
        assert_eq!(r.url_of(&r.path("c")), "s3://bucket/a/b/c");
    }
}
