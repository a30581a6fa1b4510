//! The ffmpeg run that draws a [`ThumbPlan`]: a filter graph (written to a
//! script file, since it grows with the number of tiles) and the argv.
//! Pure: they run nothing.

use super::{ThumbPlan, POSTER_FILE};
use crate::runner::{argv, media_input};
use std::ffi::OsString;
use std::path::Path;

/// A balanced `if` tree over the ascending `keys`: for a value `x` of
/// `var`, the leaf of the last key <= `x` (the first leaf for smaller
/// values). ffmpeg's expressions have no lookup tables, and a flat sum of
/// thousands of terms is refused by its parser; the tree's depth grows
/// with log2 of the keys, and each frame costs that many comparisons.
fn tree(var: &str, keys: &[i64], leaf: &dyn Fn(usize) -> String) -> String {
    fn node(
        var: &str,
        keys: &[i64],
        lo: usize,
        hi: usize,
        leaf: &dyn Fn(usize) -> String,
    ) -> String {
        if hi - lo == 1 {
            return leaf(lo);
        }
        let mid = (lo + hi) / 2;
        format!(
            "if(lt({var},{}),{},{})",
            keys[mid],
            node(var, keys, lo, mid, leaf),
            node(var, keys, mid, hi, leaf)
        )
    }
    node(var, keys, 0, keys.len(), leaf)
}

/// Selects exactly the frames whose pts is in `pts` (ascending), each
/// once: a frame that repeats a pts already passed, or goes back in time,
/// is dropped.
fn select_pts(pts: &[i64]) -> String {
    let hit = tree("pts", pts, &|i| format!("eq(pts,{})", pts[i]));
    format!("select='({hit})*(isnan(prev_selected_pts)+gt(pts,prev_selected_pts))'")
}

/// The filter graph: one decode of the video stream, split in two.
///
/// * Sheets: select the shown frames by pts, scale to the tile size with
///   square pixels, then give each frame the number of the first tile
///   showing it as its pts in seconds (time base 1): `fps=1` repeats a
///   frame over the tiles it covers, `tpad` repeats the last to the
///   end, `trim` keeps exactly `count` tiles, and `tile` lays them out.
///   Without repeats the number is just `N`, the frame's rank.
/// * Poster: select the candidates, keep the most representative
///   (`thumbnail`), scale to the poster size.
///
/// Its outputs are `[sheets]` and `[poster]`.
pub fn thumbnail_graph(plan: &ThumbPlan) -> String {
    let shown: Vec<i64> = plan.shown.iter().map(|s| s.0).collect();
    let count = plan.count();
    // setpts also maps the end of the stream (N = number of frames shown):
    // to `count`, so `fps` keeps the last frame shown (it keeps frames
    // before the end's time only).
    let firsts: Vec<i64> = (0..=plan.shown.len() as i64).collect();
    let tile_of = if plan
        .shown
        .iter()
        .enumerate()
        .all(|(n, s)| s.1 as usize == n)
    {
        "N".to_string()
    } else {
        tree("N", &firsts, &|n| {
            plan.shown.get(n).map_or(count, |s| s.1).to_string()
        })
    };
    let (tw, th) = plan.tile;
    let (pw, ph) = plan.poster;
    format!(
        "[0:{stream}]split=2[t][p];\n\
         [t]{sel},scale={tw}:{th},setsar=1,settb=1,setpts='{tile_of}',fps=1,\
         tpad=stop={count}:stop_mode=clone,trim=end_frame={count},\
         tile={c}x{r}[sheets];\n\
         [p]{psel},thumbnail=n={n},scale={pw}:{ph},setsar=1[poster]\n",
        stream = plan.stream,
        sel = select_pts(&shown),
        c = plan.columns,
        r = plan.rows,
        psel = select_pts(&plan.poster_pts),
        n = plan.poster_pts.len(),
    )
}

/// The argv of the run: `input` opened as one media file with its own
/// timestamps (`-copyts`, so the graph sees the pts of the frame index;
/// display rotation applied by ffmpeg's autorotate), the graph read from
/// `graph` (a file holding [`thumbnail_graph`]), sheets written as
/// `out_dir/thumbs-001.jpg` .. and the poster as `out_dir/poster.jpg`.
/// `out_dir` must not hold `%` (the image2 muxer's pattern character).
pub fn thumbnail_args(input: &Path, graph: &Path, out_dir: &Path) -> Vec<OsString> {
    let mut a = argv(["-nostdin", "-y", "-v", "error", "-copyts"]);
    a.extend(media_input(input));
    a.push("-filter_complex_script".into());
    a.push(graph.into());
    let jpeg = |quality: &str| {
        argv([
            "-fps_mode",
            "passthrough",
            "-c:v",
            "mjpeg",
            "-q:v",
            quality,
            "-f",
            "image2",
        ])
    };
    a.extend(argv(["-map", "[sheets]"]));
    a.extend(jpeg("4"));
    a.extend(argv(["-start_number", "1"]));
    a.push(out_dir.join("thumbs-%03d.jpg").into());
    a.extend(argv(["-map", "[poster]", "-frames:v", "1"]));
    a.extend(jpeg("2"));
    a.extend(argv(["-update", "1"]));
    a.push(out_dir.join(POSTER_FILE).into());
    a
}
