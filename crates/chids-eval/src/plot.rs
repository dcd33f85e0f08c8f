//! PNG plots for evaluation reports: ROC curves, and one recording's scores
//! over time with the exploit start and a threshold.
//!
//! Text is drawn with a TrueType font loaded at run time (plotters'
//! `ab_glyph` backend): building needs no system font library, and a
//! machine without the font gets a clear error naming what to install.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::types::RangedCoordf64;
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
pub(crate) fn ensure_font() -> Result<(), PlotError> {
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
pub(crate) struct RocCurve<'a> {
    pub label: String,
    pub points: &'a [RocPoint],
}

/// Draws ROC curves (and the chance diagonal) into `path`.
pub(crate) fn roc_png(path: &Path, curves: &[RocCurve<'_>]) -> Result<(), PlotError> {
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
        draw_mesh(
            &mut chart,
            "false-positive rate (normal-phase windows)",
            "true-positive rate (attack-phase windows)",
        )
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
                .legend(legend_line(colour, 3));
        }
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight, 18).map_err(|e| draw_err(&e))?;
        root.present().map_err(|e| draw_err(&e))
    })
}

/// What to draw for one recording.
pub(crate) struct ScorePlot<'a> {
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
pub(crate) fn scores_png(path: &Path, plot: &ScorePlot<'_>) -> Result<(), PlotError> {
    ensure_font()?;
    let draw_err = |e: &dyn std::fmt::Display| PlotError::Draw {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let scale = ScoreScale::of(plot);
    render_png(path, |root| {
        root.fill(&WHITE).map_err(|e| draw_err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&plot.title, (FONT_FAMILY, 22))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..scale.x_end.max(1e-9), scale.y_lo..scale.y_hi)
            .map_err(|e| draw_err(&e))?;
        let y_desc = if scale.log {
            format!("log10 {}", plot.score_name)
        } else {
            plot.score_name.to_string()
        };
        draw_mesh(
            &mut chart,
            "seconds since the recording's first window",
            &y_desc,
        )
        .map_err(|e| draw_err(&e))?;
        // Threshold and exploit first, so the scores are drawn over them.
        draw_threshold_and_exploit(&mut chart, plot, &scale).map_err(|e| draw_err(&e))?;
        draw_score_steps(&mut chart, plot, &scale).map_err(|e| draw_err(&e))?;
        draw_alarms(&mut chart, plot, &scale).map_err(|e| draw_err(&e))?;
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft, 16).map_err(|e| draw_err(&e))?;
        root.present().map_err(|e| draw_err(&e))
    })
}

/// A chart of seconds against scores, drawn into memory.
type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A drawing error, as text (the caller names the file).
type Drawn = Result<(), String>;

fn draw_mesh(chart: &mut Chart<'_, '_>, x_desc: &str, y_desc: &str) -> Drawn {
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style((FONT_FAMILY, 16))
        .axis_desc_style((FONT_FAMILY, 18))
        .draw()
        .map_err(|e| e.to_string())
}

fn draw_legend<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    position: SeriesLabelPosition,
    font_size: u32,
) -> Drawn {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT_FAMILY, font_size))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

/// A legend entry's short line in `colour`.
fn legend_line(colour: RGBColor, width: u32) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new([(x, y), (x + 25, y)], colour.stroke_width(width))
}

/// Where a recording's scores land on the chart: seconds from its first
/// window across, the score (or its log10) up.
struct ScoreScale {
    /// The first window's start (ns), time zero.
    t0: u64,
    /// (seconds, score) of the windows with a finite score.
    points: Vec<(f64, f64)>,
    log: bool,
    /// A floor for zero scores on the log axis: a decade below the smallest.
    floor: f64,
    /// The axis range, padded.
    y_lo: f64,
    y_hi: f64,
    /// The end of the last window (s).
    x_end: f64,
}

impl ScoreScale {
    fn of(plot: &ScorePlot<'_>) -> Self {
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
        let mut scale = ScoreScale {
            t0,
            points,
            log,
            floor: if log { lo / 10.0 } else { 0.0 },
            y_lo: 0.0,
            y_hi: 0.0,
            x_end: s
                .starts
                .last()
                .map_or(1.0, |&last| secs(last) + s.window_ns as f64 / 1e9),
        };
        let ys: Vec<f64> = scale
            .points
            .iter()
            .map(|p| scale.y(p.1))
            .chain([scale.y(plot.threshold)])
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
        (scale.y_lo, scale.y_hi) = (y_min - pad, y_max + pad);
        scale
    }

    fn secs(&self, ns: u64) -> f64 {
        ns.saturating_sub(self.t0) as f64 / 1e9
    }

    /// A score's height on the axis.
    fn y(&self, score: f64) -> f64 {
        if self.log {
            score.max(self.floor).log10()
        } else {
            score
        }
    }
}

fn draw_threshold_and_exploit(
    chart: &mut Chart<'_, '_>,
    plot: &ScorePlot<'_>,
    scale: &ScoreScale,
) -> Drawn {
    let th = scale.y(plot.threshold);
    let orange = RGBColor(255, 127, 14);
    chart
        .draw_series(LineSeries::new(
            [(0.0, th), (scale.x_end, th)],
            orange.stroke_width(2),
        ))
        .map_err(|e| e.to_string())?
        .label(format!(
            "threshold, theta {} ({:.3e})",
            plot.theta, plot.threshold
        ))
        .legend(legend_line(orange, 2));
    if let Some(e) = plot.series.exploit_ns.map(|ns| scale.secs(ns)) {
        chart
            .draw_series(LineSeries::new(
                [(e, scale.y_lo), (e, scale.y_hi)],
                BLACK.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(format!("exploit start ({e:.2} s)"))
            .legend(legend_line(BLACK, 2));
    }
    Ok(())
}

/// Each window's score as a step over the window's span; a window without
/// a score breaks the line.
fn draw_score_steps(chart: &mut Chart<'_, '_>, plot: &ScorePlot<'_>, scale: &ScoreScale) -> Drawn {
    let s = plot.series;
    let width = s.window_ns as f64 / 1e9;
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for (&start, score) in s.starts.iter().zip(&s.scores) {
        match score.filter(|y| y.is_finite()) {
            Some(y) => {
                let x = scale.secs(start);
                let run = runs.last_mut().expect("one run");
                run.push((x, scale.y(y)));
                run.push((x + width, scale.y(y)));
            }
            None => runs.push(Vec::new()),
        }
    }
    let blue = COLOURS[0];
    for (i, run) in runs.into_iter().filter(|r| !r.is_empty()).enumerate() {
        let drawn = chart
            .draw_series(LineSeries::new(run, blue.stroke_width(2)))
            .map_err(|e| e.to_string())?;
        if i == 0 {
            drawn
                .label(format!("{} per window", plot.score_name))
                .legend(legend_line(blue, 2));
        }
    }
    Ok(())
}

/// A dot on each window that scored over the threshold.
fn draw_alarms(chart: &mut Chart<'_, '_>, plot: &ScorePlot<'_>, scale: &ScoreScale) -> Drawn {
    let width = plot.series.window_ns as f64 / 1e9;
    chart
        .draw_series(
            scale
                .points
                .iter()
                .filter(|p| p.1 > plot.threshold)
                .map(|&(x, y)| Circle::new((x + width / 2.0, scale.y(y)), 5, COLOURS[1].filled())),
        )
        .map_err(|e| e.to_string())?
        .label("alarm (score > threshold)")
        .legend(|(x, y)| Circle::new((x + 12, y), 5, COLOURS[1].filled()));
    Ok(())
}
