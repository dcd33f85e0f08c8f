//! PNG plots for evaluation reports: ROC curves, and one recording's scores
//! over time with the exploit start and a threshold.
//!
//! Text is drawn with a TrueType font loaded at run time (plotters'
//! `ab_glyph` backend): building needs no system font library, and a
//! machine without the font gets a clear error naming what to install.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::metrics::{RocPoint, Series};

/// Where fonts are looked for, after `$CHIDS_FONT`.
const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];
const FONT_FAMILY: &str = "sans-serif";
const WIDTH: u32 = 900;
const HEIGHT: u32 = 600;
/// Distinct colours for up to a few curves, then they repeat.
const COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("no font for plot text: {0}")]
    Font(String),
    #[error("{path}: drawing the plot failed: {message}")]
    Draw { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Draws into memory and writes the PNG like every other output
/// (`chids_core::output`: a temporary name, then a rename; mode 0600), never
/// through whatever is at `path`.
fn render_png(
    path: &Path,
    draw: impl FnOnce(DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), PlotError>,
) -> Result<(), PlotError> {
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    draw(BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area())?;
    let write_err = |source| PlotError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, WIDTH, HEIGHT);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let encoded = enc
            .write_header()
            .and_then(|mut w| w.write_image_data(&rgb));
        encoded.map_err(|e| write_err(std::io::Error::other(e)))?;
    }
    chids_core::output::write_file(path, &bytes, chids_core::output::OUTPUT_MODE).map_err(write_err)
}

/// Loads the font once per process.
pub fn ensure_font() -> Result<(), PlotError> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let mut tried = Vec::new();
            let from_env = std::env::var_os("CHIDS_FONT").map(PathBuf::from);
            for path in from_env
                .iter()
                .cloned()
                .chain(FONT_CANDIDATES.iter().map(PathBuf::from))
            {
                match std::fs::read(&path) {
                    Ok(bytes) => {
                        // plotters keeps fonts for the whole process; one
                        // font, loaded once, is leaked on purpose.
                        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                        return plotters::style::register_font(
                            FONT_FAMILY,
                            FontStyle::Normal,
                            bytes,
                        )
                        .map_err(|_| format!("{}: not a usable TrueType font", path.display()));
                    }
                    Err(e) => tried.push(format!("{} ({e})", path.display())),
                }
            }
            Err(format!(
                "tried {}; install Debian's fonts-dejavu-core or set CHIDS_FONT to a .ttf file",
                tried.join(", ")
            ))
        })
        .clone()
        .map_err(PlotError::Font)
}

/// One ROC curve to draw.
pub struct RocCurve<'a> {
    pub label: String,
    pub points: &'a [RocPoint],
}

/// Draws ROC curves (and the chance diagonal) into `path`.
pub fn roc_png(path: &Path, curves: &[RocCurve<'_>]) -> Result<(), PlotError> {
    ensure_font()?;
    let draw_err = |e: &dyn std::fmt::Display| PlotError::Draw {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    render_png(path, |root| {
        root.fill(&WHITE).map_err(|e| draw_err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Window-level ROC", (FONT_FAMILY, 26))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(|e| draw_err(&e))?;
        chart
            .configure_mesh()
            .x_desc("false-positive rate (normal-phase windows)")
            .y_desc("true-positive rate (attack-phase windows)")
            .label_style((FONT_FAMILY, 16))
            .axis_desc_style((FONT_FAMILY, 18))
            .draw()
            .map_err(|e| draw_err(&e))?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                ShapeStyle::from(&RGBColor(170, 170, 170)).stroke_width(1),
            ))
            .map_err(|e| draw_err(&e))?;
        for (i, curve) in curves.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            chart
                .draw_series(LineSeries::new(
                    curve.points.iter().map(|p| (p.fpr, p.tpr)),
                    colour.stroke_width(3),
                ))
                .map_err(|e| draw_err(&e))?
                .label(curve.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 25, y)], colour.stroke_width(3))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FONT_FAMILY, 18))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(|e| draw_err(&e))?;
        root.present().map_err(|e| draw_err(&e))
    })
}

/// What to draw for one recording.
pub struct ScorePlot<'a> {
    pub title: String,
    /// Axis name of the scores (e.g. "reconstruction error").
    pub score_name: &'a str,
    pub series: &'a Series,
    pub theta: f64,
    pub threshold: f64,
}

/// Draws a recording's window scores over time (seconds from its first
/// window), the threshold, and the exploit start, into `path`. Scores that
/// span more than a factor of 20 are drawn as log10, so that both the
/// threshold and an attack's peak stay visible.
pub fn scores_png(path: &Path, plot: &ScorePlot<'_>) -> Result<(), PlotError> {
    ensure_font()?;
    let draw_err = |e: &dyn std::fmt::Display| PlotError::Draw {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let s = plot.series;
    let t0 = s.starts.first().copied().unwrap_or(0);
    let secs = |ns: u64| ns.saturating_sub(t0) as f64 / 1e9;
    let points: Vec<(f64, f64)> = s
        .starts
        .iter()
        .zip(&s.scores)
        .filter_map(|(&start, score)| score.map(|y| (secs(start), y)))
        .filter(|(_, y)| y.is_finite())
        .collect();
    let positive: Vec<f64> = points
        .iter()
        .map(|p| p.1)
        .chain([plot.threshold])
        .filter(|&y| y > 0.0)
        .collect();
    let lo = positive.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = positive.iter().copied().fold(0.0f64, f64::max);
    let log = lo.is_finite() && hi / lo > 20.0;
    // A floor for zero scores on the log axis: a decade below the smallest.
    let floor = if log { lo / 10.0 } else { 0.0 };
    let tr = |y: f64| if log { y.max(floor).log10() } else { y };
    let ys: Vec<f64> = points
        .iter()
        .map(|p| tr(p.1))
        .chain([tr(plot.threshold)])
        .collect();
    let (mut y_min, mut y_max) = ys
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &y| {
            (a.min(y), b.max(y))
        });
    if !log {
        y_min = y_min.min(0.0);
    }
    let span = y_max - y_min;
    if span.is_nan() || span <= 0.0 {
        // One value only (or nothing to draw): any visible range will do.
        y_max = y_min + 1.0;
    }
    let pad = (y_max - y_min) * 0.05;
    let x_end = s
        .starts
        .last()
        .map_or(1.0, |&last| secs(last) + s.window_ns as f64 / 1e9);
    let exploit = s.exploit_ns.map(secs);

    render_png(path, |root| {
        root.fill(&WHITE).map_err(|e| draw_err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&plot.title, (FONT_FAMILY, 22))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..x_end.max(1e-9), (y_min - pad)..(y_max + pad))
            .map_err(|e| draw_err(&e))?;
        let y_desc = if log {
            format!("log10 {}", plot.score_name)
        } else {
            plot.score_name.to_string()
        };
        chart
            .configure_mesh()
            .x_desc("seconds since the recording's first window")
            .y_desc(y_desc)
            .label_style((FONT_FAMILY, 16))
            .axis_desc_style((FONT_FAMILY, 18))
            .draw()
            .map_err(|e| draw_err(&e))?;
        // Threshold and exploit first, so the scores are drawn over them.
        let th = tr(plot.threshold);
        let orange = RGBColor(255, 127, 14);
        chart
            .draw_series(LineSeries::new(
                [(0.0, th), (x_end, th)],
                orange.stroke_width(2),
            ))
            .map_err(|e| draw_err(&e))?
            .label(format!(
                "threshold, theta {} ({:.3e})",
                plot.theta, plot.threshold
            ))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 25, y)], orange.stroke_width(2)));
        if let Some(e) = exploit {
            let black = BLACK;
            chart
                .draw_series(LineSeries::new(
                    [(e, y_min - pad), (e, y_max + pad)],
                    black.stroke_width(2),
                ))
                .map_err(|e| draw_err(&e))?
                .label(format!("exploit start ({e:.2} s)"))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 25, y)], black.stroke_width(2))
                });
        }
        // Each window's score as a step over the window's span; a window
        // without a score breaks the line.
        let width = s.window_ns as f64 / 1e9;
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (&start, score) in s.starts.iter().zip(&s.scores) {
            match score.filter(|y| y.is_finite()) {
                Some(y) => {
                    let x = secs(start);
                    let run = runs.last_mut().expect("one run");
                    run.push((x, tr(y)));
                    run.push((x + width, tr(y)));
                }
                None => runs.push(Vec::new()),
            }
        }
        let blue = COLOURS[0];
        for (i, run) in runs.into_iter().filter(|r| !r.is_empty()).enumerate() {
            let drawn = chart
                .draw_series(LineSeries::new(run, blue.stroke_width(2)))
                .map_err(|e| draw_err(&e))?;
            if i == 0 {
                drawn
                    .label(format!("{} per window", plot.score_name))
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 25, y)], blue.stroke_width(2))
                    });
            }
        }
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| p.1 > plot.threshold)
                    .map(|&(x, y)| Circle::new((x + width / 2.0, tr(y)), 5, COLOURS[1].filled())),
            )
            .map_err(|e| draw_err(&e))?
            .label("alarm (score > threshold)")
            .legend(|(x, y)| Circle::new((x + 12, y), 5, COLOURS[1].filled()));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FONT_FAMILY, 16))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(|e| draw_err(&e))?;
        root.present().map_err(|e| draw_err(&e))
    })
}
