//! Downloading a ladder encode's published folder from a server
//! (`tessera encode SRC -o DIR --ladder ... --server URL`).
//!
//! The server serves the folder file by file
//! (`GET /api/v1/jobs/{id}/ladder/{path}`); what it holds is found the way
//! a player finds it: the master playlist names the renditions' media and
//! I-frame playlists, the audio and subtitle playlists; each of those names
//! its init segment and media segments (or WebVTT files); `ladder.json`
//! names the thumbnails; `manifest.mpd` shares the segments. Every name the
//! server sends is checked as the server checks a path
//! ([`tessera_service::ladder_path`]: plain relative names, no `..`), so a
//! hostile playlist cannot make this write outside the folder. The files
//! land in a hidden folder beside the output, renamed into place once all
//! have arrived.

use super::Client;
use crate::fail::{Failure, Result};
use serde_json::Value;
use std::collections::{BTreeSet, VecDeque};
use std::io::{Read, Write};
use std::path::Path;

/// The most files a downloaded ladder may hold (12 rungs of 20,000
/// segments each is far beyond any video Tessera encodes).
const MAX_FILES: usize = 300_000;
/// The largest playlist or report read into memory.
const MAX_TEXT: u64 = 16 << 20;

/// The URIs a playlist names: its lines that are no tag, and every
/// `URI="..."` attribute of its tags.
pub(crate) fn playlist_uris(text: &str) -> Vec<String> {
    let mut uris = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            uris.push(line.to_string());
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("URI=\"") {
            let after = &rest[at + 5..];
            let Some(end) = after.find('"') else { break };
            uris.push(after[..end].to_string());
            rest = &after[end + 1..];
        }
    }
    uris
}

/// `uri` as named in the playlist at `from`, as a path in the folder; a
/// URI that leaves the folder (absolute, a scheme, `..`) is refused.
pub(crate) fn resolve(from: &str, uri: &str) -> Result<String> {
    let dir = from.rsplit_once('/').map_or("", |(d, _)| d);
    let path = if dir.is_empty() {
        uri.to_string()
    } else {
        format!("{dir}/{uri}")
    };
    tessera_service::ladder_path(&path).map_err(|e| {
        Failure::internal(format!(
            "{from} names {uri:?}, which is not a file of the ladder ({e}); the server's ladder is damaged"
        ))
    })?;
    Ok(path)
}

/// Downloads job `id`'s ladder into `to` (absent, an empty folder, or a
/// ladder to replace); the number of files and bytes.
pub fn download(client: &Client, id: i64, to: &Path) -> Result<(usize, u64)> {
    let name = to
        .file_name()
        .map_or_else(|| "ladder".into(), |n| n.to_string_lossy().into_owned());
    let part = to.with_file_name(format!(".{name}.tessera-part"));
    if part.exists() {
        std::fs::remove_dir_all(&part).map_err(|e| io_failure(&part, e))?;
    }
    std::fs::create_dir_all(&part).map_err(|e| io_failure(&part, e))?;
    let got = fetch_all(client, id, &part);
    let got = got.and_then(|got| {
        if to.join(tessera_media::ladder::LADDER_REPORT).is_file() {
            std::fs::remove_dir_all(to).map_err(|e| io_failure(to, e))?;
        } else if to.is_dir() {
            std::fs::remove_dir(to).map_err(|e| io_failure(to, e))?;
        }
        std::fs::rename(&part, to).map_err(|e| io_failure(to, e))?;
        Ok(got)
    });
    if got.is_err() {
        let _ = std::fs::remove_dir_all(&part);
    }
    got
}

fn io_failure(path: &Path, e: std::io::Error) -> Failure {
    Failure::env(format!("{}: {e}", path.display()))
}

fn fetch_all(client: &Client, id: i64, into: &Path) -> Result<(usize, u64)> {
    let mut queue: VecDeque<String> = ["master.m3u8", "manifest.mpd", "ladder.json"]
        .into_iter()
        .map(String::from)
        .collect();
    let mut seen: BTreeSet<String> = queue.iter().cloned().collect();
    let mut bytes = 0u64;
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    while let Some(path) = queue.pop_front() {
        let target = into.join(&path);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_failure(dir, e))?;
        }
        let wanted = if path.ends_with(".m3u8") || path == "ladder.json" {
            let text = fetch_text(client, id, &path)?;
            std::fs::write(&target, &text).map_err(|e| io_failure(&target, e))?;
            bytes += text.len() as u64;
            if path == "ladder.json" {
                thumbnails(&text)?
            } else {
                playlist_uris(&text)
                    .iter()
                    .map(|uri| resolve(&path, uri))
                    .collect::<Result<Vec<_>>>()?
            }
        } else {
            bytes += fetch_file(client, id, &path, &target)?;
            Vec::new()
        };
        for p in wanted {
            if seen.insert(p.clone()) {
                queue.push_back(p);
            }
        }
        if seen.len() > MAX_FILES {
            return Err(Failure::internal(format!(
                "the ladder names more than {MAX_FILES} files; the server's ladder is damaged"
            )));
        }
        if tty {
            super::upload::status_line(
                tty,
                &format!(
                    "downloading the ladder: {} of {} files, {}",
                    seen.len() - queue.len(),
                    seen.len(),
                    super::upload::mib(bytes)
                ),
            );
        }
    }
    let line = format!(
        "downloaded the ladder: {} files, {}",
        seen.len(),
        super::upload::mib(bytes)
    );
    super::upload::status_line(tty, &line);
    if tty {
        eprintln!();
    }
    Ok((seen.len(), bytes))
}

/// The thumbnails `ladder.json` names (in `thumbs/`).
fn thumbnails(report: &str) -> Result<Vec<String>> {
    let v: Value = serde_json::from_str(report)
        .map_err(|e| Failure::internal(format!("the server's ladder.json does not parse: {e}")))?;
    let t = &v["thumbnails"];
    let mut names: Vec<&str> = [t["poster"].as_str(), t["vtt"].as_str()]
        .into_iter()
        .flatten()
        .collect();
    names.extend(
        t["sprites"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str),
    );
    names.into_iter().map(|n| resolve("thumbs/x", n)).collect()
}

fn fetch_text(client: &Client, id: i64, path: &str) -> Result<String> {
    let mut text = String::new();
    client
        .open_stream(&format!("/jobs/{id}/ladder/{path}"))?
        .take(MAX_TEXT)
        .read_to_string(&mut text)
        .map_err(|e| Failure::env(format!("downloading {path} of the ladder: {e}")))?;
    Ok(text)
}

fn fetch_file(client: &Client, id: i64, path: &str, to: &Path) -> Result<u64> {
    let mut reader = client.open_stream(&format!("/jobs/{id}/ladder/{path}"))?;
    let mut out = std::fs::File::create(to).map_err(|e| io_failure(to, e))?;
    let n = std::io::copy(&mut reader, &mut out)
        .map_err(|e| Failure::env(format!("downloading {path} of the ladder: {e}")))?;
    out.flush().map_err(|e| io_failure(to, e))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playlists_name_their_uris_and_none_leaves_the_folder() {
        let master =
            "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",URI=\"audio-und-0/index.m3u8\"\n\
            #EXT-X-STREAM-INF:BANDWIDTH=1\n240p/index.m3u8\n\
            #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"240p/iframes.m3u8\"\n";
        assert_eq!(
            playlist_uris(master),
            [
                "audio-und-0/index.m3u8",
                "240p/index.m3u8",
                "240p/iframes.m3u8"
            ]
        );
        let media = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:1,\nseg-00001.m4s\n";
        let uris = playlist_uris(media);
        assert_eq!(uris, ["init.mp4", "seg-00001.m4s"]);
        assert_eq!(
            resolve("240p/index.m3u8", "init.mp4").unwrap(),
            "240p/init.mp4"
        );
        assert_eq!(
            resolve("master.m3u8", "240p/index.m3u8").unwrap(),
            "240p/index.m3u8"
        );
        for bad in [
            "../../etc/passwd.json",
            "/etc/x.m4s",
            "http://evil/x.m4s",
            "a/../../b.m4s",
        ] {
            let e = resolve("240p/index.m3u8", bad).unwrap_err().message;
            assert!(e.contains("not a file of the ladder"), "{bad}: {e}");
        }
    }
}
