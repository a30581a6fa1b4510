//! Uploads from a [`Source`] that is no HTTP body: accepted when ffprobe
//! finds a video, refused and removed otherwise, and a source's own read
//! error handed back as it was.

use super::World;
use crate::{AsMember, AsViewer, ServiceError, Source};
use std::collections::VecDeque;
use std::future::Future;

/// What the test source fails with: its own error, or the service's kind.
#[derive(Debug, PartialEq)]
enum Failure {
    Broken,
    Service(&'static str),
}

impl From<ServiceError> for Failure {
    fn from(e: ServiceError) -> Self {
        Failure::Service(e.code())
    }
}

/// Bytes in chunks, or a read that breaks.
struct Chunks(VecDeque<Result<Vec<u8>, Failure>>);

impl Chunks {
    fn of(bytes: &[u8], size: usize) -> Self {
        Chunks(bytes.chunks(size).map(|c| Ok(c.to_vec())).collect())
    }
}

impl Source for Chunks {
    type Error = Failure;
    type Chunk = Vec<u8>;

    fn next_chunk(&mut self) -> impl Future<Output = Result<Option<Vec<u8>>, Failure>> + Send {
        let next = self.0.pop_front();
        async move { next.transpose() }
    }
}

/// What is left in the project's uploads folder.
fn left(w: &World) -> Vec<String> {
    let dir = w.service.uploads_of(w.project);
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_source_uploads_and_every_refusal_leaves_nothing_behind() {
    let w = World::new(1).await;
    let s = &w.service;
    let member = s.project::<AsMember>(&w.member, "video").await.unwrap();
    let clip_dir = tempfile::tempdir().unwrap();
    let clip = tessera_media::testclips::cfr_25(clip_dir.path()).expect("ffmpeg makes a clip");
    let bytes = std::fs::read(&clip).unwrap();

    // Not a video: the probe decides, whatever the name says.
    let text = Chunks::of(b"this is no video at all", 4);
    let e = s.upload(&member, Some("clip.mp4"), text).await.unwrap_err();
    assert_eq!(e, Failure::Service("invalid_request"));
    assert!(left(&w).is_empty(), "{:?}", left(&w));

    // The source breaks off: its own error comes back, unchanged.
    let mut broken = Chunks::of(&bytes[..bytes.len() / 2], 4096);
    broken.0.push_back(Err(Failure::Broken));
    let e = s
        .upload(&member, Some("clip.mp4"), broken)
        .await
        .unwrap_err();
    assert_eq!(e, Failure::Broken);
    assert!(left(&w).is_empty(), "{:?}", left(&w));

    // Past the limit: refused as it arrives.
    let small = s.clone().with_max_upload_bytes(10_000);
    let e = small
        .upload(&member, Some("clip.mp4"), Chunks::of(&bytes, 4096))
        .await
        .unwrap_err();
    assert_eq!(e, Failure::Service("payload_too_large"));
    assert!(left(&w).is_empty(), "{:?}", left(&w));

    // A video, under a name that tries to leave its folder.
    let upload = s
        .upload(&member, Some("../../clip.mp4"), Chunks::of(&bytes, 4096))
        .await
        .unwrap();
    assert_eq!(upload.item.name, "clip.mp4");
    assert_eq!(upload.item.bytes, bytes.len() as u64);
    assert!(!upload.streams.is_empty());
    let viewer = s.project::<AsViewer>(&w.viewer, "video").await.unwrap();
    let listed = s.uploads(&viewer).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].upload, upload.item.upload);
    let e = s.delete_upload(&member, "nope").await.unwrap_err();
    assert_eq!(e.code(), "not_found");
    s.delete_upload(&member, &upload.item.upload).await.unwrap();
    assert!(left(&w).is_empty(), "{:?}", left(&w));
}
