//! A tiny std-only HTTP/1.1 file server for browser tests (`ladder_play`):
//! it serves folders and in-memory pages on loopback with the content types
//! players check, and logs every request so a test can say which files a
//! player fetched.
//!
//! Bounded like anything facing a browser: loopback only, GET and HEAD
//! only, a request head of at most 8 KiB read within 10 s, at most 32
//! connections at once, one request per connection (`Connection: close`),
//! paths without `%`, `\`, NUL or `..` segments, and every file confined to
//! its folder after symlinks are resolved. No ranges: a whole file, 200.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const MAX_HEAD: usize = 8 * 1024;
const MAX_CONNECTIONS: usize = 32;
const MAX_FILE: u64 = 64 * 1024 * 1024;

/// What is served: URL prefixes mapped to folders, and pages held in memory.
#[derive(Default)]
pub(crate) struct Site {
    /// `("/videojs/", folder)`: `/videojs/a/b.js` is `folder/a/b.js`; the
    /// longest matching prefix wins, `"/"` catches the rest.
    pub(crate) mounts: Vec<(String, PathBuf)>,
    /// `("/play.html", content type, body)`.
    pub(crate) pages: Vec<(String, &'static str, String)>,
}

/// One logged request: the path asked for (query removed) and the status.
#[derive(Clone, Debug)]
pub(crate) struct Hit {
    pub(crate) path: String,
    pub(crate) status: u16,
}

/// The running server; stopped (and its thread joined) when dropped.
pub(crate) struct StaticServer {
    pub(crate) url: String,
    log: Arc<Mutex<Vec<Hit>>>,
    stop: Arc<AtomicBool>,
    port: u16,
    thread: Option<JoinHandle<()>>,
}

impl StaticServer {
    /// Serves `site` on a free loopback port.
    pub(crate) fn start(site: Site) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let site = Arc::new(site);
        let (log2, stop2) = (log.clone(), stop.clone());
        let open = Arc::new(AtomicUsize::new(0));
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                    open.fetch_sub(1, Ordering::SeqCst);
                    let _ = respond(&mut conn, 503, "text/plain", b"busy\n", false);
                    continue;
                }
                let (site, log, open) = (site.clone(), log2.clone(), open.clone());
                std::thread::spawn(move || {
                    serve(&site, &log, conn);
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}"),
            log,
            stop,
            port,
            thread: Some(thread),
        }
    }

    /// Every request so far, in order.
    pub(crate) fn hits(&self) -> Vec<Hit> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The content type players expect for `path`'s extension.
pub(crate) fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext.to_ascii_lowercase().as_str() {
        "m3u8" => "application/vnd.apple.mpegurl",
        "mpd" => "application/dash+xml",
        "mp4" => "video/mp4",
        "m4s" => "video/iso.segment",
        "vtt" => "text/vtt; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "jpg" | "jpeg" => "image/jpeg",
        "svg" => "image/svg+xml",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        _ => "application/octet-stream",
    }
}

/// Reads one request head and answers it.
fn serve(site: &Site, log: &Mutex<Vec<Hit>>, mut conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(30)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let complete = loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            break true;
        }
        if head.len() > MAX_HEAD {
            break false;
        }
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    };
    if !complete {
        let _ = respond(
            &mut conn,
            431,
            "text/plain",
            b"request head too large\n",
            false,
        );
        // Read (a bounded amount of) what is left, so closing does not reset
        // the connection before the client reads the answer.
        let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
        let _ = std::io::copy(&mut (&conn).take(1 << 20), &mut std::io::sink());
        return;
    }
    let line = String::from_utf8_lossy(&head);
    let mut parts = line.lines().next().unwrap_or("").split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("").to_string();
    let head_only = method == "HEAD";
    let (status, ctype, body) = if method != "GET" && !head_only {
        (405, "text/plain", b"GET or HEAD only\n".to_vec())
    } else {
        match lookup(site, &path) {
            Ok((ctype, body)) => (200, ctype, body),
            Err(code) => (code, "text/plain", format!("{code}\n").into_bytes()),
        }
    };
    log.lock().unwrap().push(Hit {
        path: path.clone(),
        status,
    });
    let _ = respond(&mut conn, status, ctype, &body, head_only);
}

/// The content type and bytes for `path`, or the status refusing it.
fn lookup(site: &Site, path: &str) -> Result<(&'static str, Vec<u8>), u16> {
    if !path.starts_with('/') || path.contains(['%', '\\', '\0']) {
        return Err(400);
    }
    if path.split('/').any(|s| s == "..") {
        return Err(400);
    }
    if let Some((_, ctype, body)) = site.pages.iter().find(|(p, _, _)| p == path) {
        return Ok((ctype, body.clone().into_bytes()));
    }
    let (prefix, root) = site
        .mounts
        .iter()
        .filter(|(p, _)| path.starts_with(p.as_str()))
        .max_by_key(|(p, _)| p.len())
        .ok_or(404u16)?;
    let rel = Path::new(&path[prefix.len()..]);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(400);
    }
    let root = root.canonicalize().map_err(|_| 404u16)?;
    let file = root.join(rel).canonicalize().map_err(|_| 404u16)?;
    if !file.starts_with(&root) || !file.is_file() {
        return Err(404);
    }
    let len = file.metadata().map_err(|_| 404u16)?.len();
    if len > MAX_FILE {
        return Err(413);
    }
    let body = std::fs::read(&file).map_err(|_| 404u16)?;
    Ok((content_type(path), body))
}

fn respond(
    conn: &mut TcpStream,
    status: u16,
    ctype: &str,
    body: &[u8],
    head_only: bool,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    if !head_only {
        conn.write_all(body)?;
    }
    conn.flush()?;
    conn.shutdown(Shutdown::Write)
}

/// The refusals, performed over raw sockets (clients would tidy the paths).
#[test]
fn the_test_server_refuses_what_it_must() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("a.m3u8"), "#EXTM3U\n").unwrap();
    std::fs::write(dir.path().join("secret.txt"), "no").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("link.txt")).unwrap();
    let server = StaticServer::start(Site {
        mounts: vec![("/".into(), root)],
        pages: vec![("/p.html".into(), "text/html", "<p>hi</p>".into())],
    });
    let ask = |request: &[u8]| -> String {
        let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(request);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    let ok = ask(b"GET /a.m3u8?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(
        ok.contains("Content-Type: application/vnd.apple.mpegurl\r\n"),
        "{ok}"
    );
    assert!(ok.ends_with("#EXTM3U\n"), "{ok}");
    assert!(ask(b"GET /p.html HTTP/1.1\r\n\r\n").ends_with("<p>hi</p>"));
    for (request, status) in [
        (&b"GET /../secret.txt HTTP/1.1\r\n\r\n"[..], "400"),
        (b"GET /%2e%2e/secret.txt HTTP/1.1\r\n\r\n", "400"),
        (b"GET /link.txt HTTP/1.1\r\n\r\n", "404"),
        (b"GET /missing.m4s HTTP/1.1\r\n\r\n", "404"),
        (b"GET a.m3u8 HTTP/1.1\r\n\r\n", "400"),
        (b"POST /a.m3u8 HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "405"),
    ] {
        let got = ask(request);
        assert!(
            got.starts_with(&format!("HTTP/1.1 {status} ")),
            "{}: {got}",
            String::from_utf8_lossy(request)
        );
    }
    let mut huge = b"GET /a.m3u8 HTTP/1.1\r\nX: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 3 * MAX_HEAD));
    assert!(ask(&huge).starts_with("HTTP/1.1 431 "));
    let statuses: Vec<u16> = server.hits().iter().map(|h| h.status).collect();
    assert_eq!(statuses, [200, 200, 400, 400, 404, 404, 400, 405]);
}
