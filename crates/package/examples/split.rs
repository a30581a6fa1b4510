//! Splits one fragmented MP4 and prints the `Track` as JSON, with the time
//! it took: `split IN.mp4 OUT_DIR samples 60,60,60` or
//! `split IN.mp4 OUT_DIR seconds 0,2.002,4.004`.

use std::time::Instant;
use tessera_package::{split_fmp4, Cuts};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, out, kind, list] = args.as_slice() else {
        eprintln!("usage: split IN.mp4 OUT_DIR samples|seconds N,N,...");
        std::process::exit(2);
    };
    let cuts = match kind.as_str() {
        "samples" => Cuts::Samples(
            list.split(',')
                .map(|n| n.parse().expect("sample count"))
                .collect(),
        ),
        "seconds" => Cuts::Seconds(
            list.split(',')
                .map(|n| n.parse().expect("seconds"))
                .collect(),
        ),
        _ => {
            eprintln!("cuts are 'samples' or 'seconds'");
            std::process::exit(2);
        }
    };
    let t = Instant::now();
    match split_fmp4(input.as_ref(), out.as_ref(), &cuts) {
        Ok(track) => {
            let secs = t.elapsed().as_secs_f64();
            let bytes: u64 = track.segments.iter().map(|s| s.bytes).sum();
            eprintln!(
                "{} segments, {bytes} bytes in {secs:.3} s",
                track.segments.len()
            );
            println!("{}", serde_json::to_string_pretty(&track).expect("json"));
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
