//! Report plots, drawn once per backend (PNG and SVG) with `plotters` and the
//! embedded DejaVu Sans font, so no system font is looked up at run time.

use super::CellResults;
use crate::attack::{AttackRecord, Outcome};
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// DejaVu Sans (Bitstream Vera licence, see DejaVuSans-LICENSE.txt).
static FONT: &[u8] = include_bytes!("DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

fn register_font() -> Result<()> {
    static DONE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .map_err(|_| "the embedded DejaVu Sans font did not load".to_string())
    })
    .clone()
    .map_err(Error::Other)
}

/// One plot in both formats.
pub struct Plot {
    /// File stem: `plots/<name>.png` and `.svg`.
    pub name: String,
    pub title: String,
    /// What the plot shows, for the report text.
    pub caption: String,
    pub png: Vec<u8>,
    pub svg: String,
    pub width: u32,
    pub height: u32,
}

const CLEAN: RGBColor = RGBColor(52, 101, 164);
const ATTACKED: RGBColor = RGBColor(204, 80, 62);
const BASELINE: RGBColor = RGBColor(150, 150, 150);
const ANY: RGBColor = RGBColor(78, 154, 6);
const EXACT: RGBColor = RGBColor(117, 80, 123);
const ALL_QUESTIONS: RGBColor = RGBColor(114, 159, 207);

/// A horizontal grouped bar chart: one row per label, one bar per series.
struct HBars {
    title: String,
    x_desc: String,
    labels: Vec<String>,
    series: Vec<(String, RGBColor, Vec<f64>)>,
    x_max: f64,
    percent: bool,
}

/// A histogram of values with fixed bins.
struct Hist {
    title: String,
    x_desc: String,
    series: Vec<(String, RGBColor, Vec<f64>)>,
    lo: f64,
    hi: f64,
    bins: usize,
    /// Integer x values (counts): label ticks without decimals.
    x_int: bool,
}

enum Chart {
    HBars(HBars),
    Hist(Hist),
}

fn text_px(s: &str, size: f64) -> u32 {
    // DejaVu Sans averages a little over half an em per character.
    (s.chars().count() as f64 * size * 0.58) as u32
}

impl Chart {
    fn size(&self) -> (u32, u32) {
        match self {
            Chart::HBars(b) => {
                let rows = b.labels.len().max(1) as u32;
                let per = 14 + 18 * b.series.len() as u32;
                (1000, 160 + rows * per)
            }
            Chart::Hist(_) => (900, 460),
        }
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        match self {
            Chart::HBars(b) => draw_hbars(root, b),
            Chart::Hist(h) => draw_hist(root, h),
        }
    }
}

fn draw_hbars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    b: &HBars,
) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let n = b.labels.len().max(1);
    let label_px = b
        .labels
        .iter()
        .map(|l| text_px(l, 15.0))
        .max()
        .unwrap_or(40)
        .clamp(60, 480)
        + 16;
    let x_max = if b.x_max > 0.0 { b.x_max * 1.12 } else { 1.0 };
    let mut chart = ChartBuilder::on(root)
        .caption(&b.title, (FAMILY, 24))
        .margin(14)
        .margin_bottom(34)
        .x_label_area_size(48)
        .y_label_area_size(label_px)
        .build_cartesian_2d(0f64..x_max, 0f64..n as f64)
        .map_err(e)?;
    let percent = b.percent;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(WHITE)
        .y_labels(0)
        .y_label_formatter(&|_| String::new())
        .x_label_formatter(&|v| {
            if percent {
                format!("{:.0}%", v * 100.0)
            } else {
                format!("{v:.0}")
            }
        })
        .x_desc(b.x_desc.as_str())
        .label_style((FAMILY, 15))
        .axis_desc_style((FAMILY, 16))
        .draw()
        .map_err(e)?;
    // Row labels drawn by hand at each row's centre (row 0 at the top), so
    // long cell names sit exactly beside their bars.
    for (i, label) in b.labels.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(0.0, (n - 1 - i) as f64 + 0.5));
        root.draw(&Text::new(
            label.clone(),
            (px - 8, py),
            (FAMILY, 15)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Right, VPos::Center)),
        ))
        .map_err(e)?;
    }
    // Each row splits its height among the series that have a value there
    // (NaN = no bar), so a row with one bar draws it full height.
    let slot = |i: usize, si: usize| -> (f64, f64) {
        let present: Vec<usize> = (0..b.series.len())
            .filter(|&s| b.series[s].2.get(i).is_some_and(|v| v.is_finite()))
            .collect();
        let k = present.len().max(1) as f64;
        let rank = present.iter().position(|&s| s == si).unwrap_or(0) as f64;
        let band = 0.8 / k;
        let top = (n - 1 - i) as f64 + 0.9 - band * rank;
        (top - band, top)
    };
    for (si, (name, color, values)) in b.series.iter().enumerate() {
        let color = *color;
        let rects = values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, v)| {
                let (lo, hi) = slot(i, si);
                Rectangle::new([(0.0, lo), (*v, hi)], color.filled())
            });
        chart.draw_series(rects).map_err(e)?;
        let _ = name;
        let texts = values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, v)| {
                let (lo, hi) = slot(i, si);
                let s = if percent {
                    format!("{:.1}%", v * 100.0)
                } else if v.fract() == 0.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.1}")
                };
                Text::new(
                    format!(" {s}"),
                    (*v, (lo + hi) / 2.0),
                    (FAMILY, 13)
                        .into_font()
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Left, VPos::Center)),
                )
            });
        chart.draw_series(texts).map_err(e)?;
    }
    // The legend sits at the bottom right, beside the axis title, so it never
    // covers a bar or the chart title.
    let (w, h) = root.dim_in_pixel();
    let mut x = w as i32 - 14;
    let y = h as i32 - 16;
    for (name, color, _) in b.series.iter().rev() {
        x -= text_px(name, 14.0) as i32 + 30;
        root.draw(&Rectangle::new(
            [(x, y - 7), (x + 14, y + 7)],
            color.filled(),
        ))
        .map_err(e)?;
        root.draw(&Text::new(
            name.clone(),
            (x + 20, y),
            (FAMILY, 14)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(e)?;
    }
    root.present().map_err(e)
}

fn draw_hist<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    h: &Hist,
) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let width = (h.hi - h.lo) / h.bins as f64;
    let counts: Vec<Vec<usize>> = h
        .series
        .iter()
        .map(|(_, _, vals)| {
            let mut c = vec![0usize; h.bins];
            for v in vals {
                let b = (((v - h.lo) / width).floor().max(0.0) as usize).min(h.bins - 1);
                c[b] += 1;
            }
            c
        })
        .collect();
    let y_max = (counts.iter().flatten().copied().max().unwrap_or(0).max(1) as f64 * 1.15).ceil();
    let x_int = h.x_int;
    let mut chart = ChartBuilder::on(root)
        .caption(&h.title, (FAMILY, 24))
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(56)
        .build_cartesian_2d(h.lo..h.hi, 0f64..y_max)
        .map_err(e)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc(h.x_desc.as_str())
        .y_desc("questions")
        .y_labels((y_max as usize).clamp(2, 10))
        .y_label_formatter(&|v| {
            if v.fract() == 0.0 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        })
        .x_label_formatter(&|v| {
            if !x_int {
                format!("{v:.2}")
            } else if v.fract() == 0.0 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        })
        .label_style((FAMILY, 15))
        .axis_desc_style((FAMILY, 16))
        .draw()
        .map_err(e)?;
    let k = h.series.len().max(1) as f64;
    for (si, ((name, color, _), c)) in h.series.iter().zip(&counts).enumerate() {
        let color = *color;
        let lo = h.lo;
        let rects = c
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(move |(b, n)| {
                let x0 = lo + b as f64 * width + width * si as f64 / k;
                Rectangle::new(
                    [(x0, 0.0), (x0 + width / k * 0.92, *n as f64)],
                    color.filled(),
                )
            });
        chart
            .draw_series(rects)
            .map_err(e)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
    }
    if h.series.iter().all(|(_, _, v)| v.is_empty()) {
        chart
            .draw_series(std::iter::once(Text::new(
                "no successful attacks yet",
                (h.lo + (h.hi - h.lo) * 0.35, y_max * 0.5),
                (FAMILY, 18).into_font().color(&BLACK),
            )))
            .map_err(e)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .label_font((FAMILY, 14))
        .draw()
        .map_err(e)?;
    root.present().map_err(e)
}

fn render(name: &str, title: &str, caption: &str, chart: Chart) -> Result<Plot> {
    let (w, h) = chart.size();
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        chart
            .draw(&root)
            .map_err(|m| Error::Other(format!("drawing plot {name}: {m}")))?;
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        chart
            .draw(&root)
            .map_err(|m| Error::Other(format!("drawing plot {name}: {m}")))?;
    }
    Ok(Plot {
        name: name.into(),
        title: title.into(),
        caption: caption.into(),
        png: encode_png(&rgb, w, h)?,
        svg,
        width: w,
        height: h,
    })
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(rgb, w, h, image::ColorType::Rgb8)
        .map_err(|e| Error::Other(format!("encoding PNG: {e}")))?;
    Ok(out)
}

/// Row labels that leave out the parts every cell shares.
pub fn short_labels(cells: &[&CellResults]) -> Vec<String> {
    let parts = |c: &CellResults| {
        [
            c.key.model.clone(),
            crate::campaign::spec::display_label(&c.key.transform),
            c.key.dataset.clone(),
            c.key.attack.clone(),
        ]
    };
    let all: Vec<[String; 4]> = cells.iter().map(|c| parts(c)).collect();
    let varies: Vec<bool> = (0..4)
        .map(|j| all.iter().any(|p| p[j] != all[0][j]))
        .collect();
    all.iter()
        .map(|p| {
            let kept: Vec<&str> = (0..4)
                .filter(|&j| varies[j])
                .map(|j| p[j].as_str())
                .collect();
            if kept.is_empty() {
                p[3].clone()
            } else {
                kept.join(" / ")
            }
        })
        .collect()
}

fn successes<'a, 'b>(
    cells: &'b [&'a CellResults],
) -> impl Iterator<Item = &'a AttackRecord> + use<'a, 'b> {
    cells
        .iter()
        .copied()
        .flat_map(|c| c.records.iter().filter(|r| r.result == Outcome::Success))
}

/// Draws every report plot.
pub fn draw_all(results: &[CellResults]) -> Result<Vec<Plot>> {
    register_font()?;
    let main: Vec<&CellResults> = results.iter().filter(|c| !c.baseline).collect();
    let base: Vec<&CellResults> = results.iter().filter(|c| c.baseline).collect();
    let all: Vec<&CellResults> = results.iter().collect();
    let mut plots = Vec::new();

    // 1. Clean vs attacked accuracy per cell (baseline cells included, labelled).
    let labels = short_labels(&all);
    plots.push(render(
        "accuracy",
        "Clean vs attacked accuracy",
        "Accuracy on the clean questions and after the attack, per model / transform / dataset / attack.",
        Chart::HBars(HBars {
            title: "Clean vs attacked accuracy".into(),
            x_desc: "accuracy".into(),
            labels,
            series: vec![
                ("clean".into(), CLEAN, all.iter().map(|c| c.summary.summary.clean_accuracy).collect()),
                ("attacked".into(), ATTACKED, all.iter().map(|c| c.summary.summary.attacked_accuracy).collect()),
            ],
            x_max: 1.0,
            percent: true,
        }),
    )?);

    // 2. Successes per source, and the exact source sets (overlap).
    let mut any: BTreeMap<String, f64> = BTreeMap::new();
    let mut exact: BTreeMap<String, f64> = BTreeMap::new();
    for r in successes(&main) {
        let mut s: Vec<&str> = r
            .changes
            .iter()
            .flat_map(|c| c.sources.iter().map(String::as_str))
            .collect();
        s.sort();
        s.dedup();
        for src in &s {
            *any.entry((*src).to_string()).or_default() += 1.0;
        }
        let set = if s.is_empty() {
            "unknown".to_string()
        } else {
            s.join(" + ")
        };
        *exact.entry(set).or_default() += 1.0;
    }
    let mut src_labels = Vec::new();
    let mut any_v = Vec::new();
    let mut exact_v = Vec::new();
    for (k, v) in &any {
        src_labels.push(format!("{k} (any)"));
        any_v.push(*v);
        exact_v.push(f64::NAN);
    }
    for (k, v) in &exact {
        src_labels.push(if k.contains('+') {
            k.clone()
        } else {
            format!("{k} only")
        });
        any_v.push(f64::NAN);
        exact_v.push(*v);
    }
    if src_labels.is_empty() {
        src_labels.push("no successes".into());
        any_v.push(0.0);
        exact_v.push(0.0);
    }
    let x_max = any_v
        .iter()
        .chain(&exact_v)
        .cloned()
        .filter(|v| v.is_finite())
        .fold(1.0, f64::max);
    plots.push(render(
        "sources",
        "Successful attacks per candidate source",
        "How many successful attacks each source proposed the winning word for (any), and the exact sets of sources that proposed it (overlap).",
        Chart::HBars(HBars {
            title: "Successful attacks per candidate source".into(),
            x_desc: "successful attacks".into(),
            labels: src_labels,
            series: vec![
                ("proposed by (any)".into(), ANY, any_v),
                ("exact source set".into(), EXACT, exact_v),
            ],
            x_max,
            percent: false,
        }),
    )?);

    // 3. Response length: clean over every question (where a prompt
    // transform's effect on length shows), then clean vs attacked over the
    // attacked questions.
    let len_cells: Vec<&CellResults> = all.clone();
    let all_len: Vec<f64> = len_cells
        .iter()
        .map(|c| c.summary.summary.mean_response_tokens)
        .collect();
    let attacked_mean = |c: &CellResults, clean: bool| {
        let v: Vec<f64> = c
            .records
            .iter()
            .filter(|r| r.result != Outcome::Skipped)
            .filter_map(|r| {
                if clean {
                    Some(r.clean_tokens as f64)
                } else {
                    r.attacked_tokens.map(|t| t as f64)
                }
            })
            .collect();
        if v.is_empty() {
            f64::NAN // no attacked question: no bar
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let clean_len: Vec<f64> = len_cells.iter().map(|c| attacked_mean(c, true)).collect();
    let att_len: Vec<f64> = len_cells.iter().map(|c| attacked_mean(c, false)).collect();
    let x_max = clean_len
        .iter()
        .chain(&att_len)
        .chain(&all_len)
        .cloned()
        .fold(1.0, f64::max);
    plots.push(render(
        "length",
        "Response length, clean vs attacked",
        "Mean response tokens: clean, over every question (every sample of a decoding transform), where a prompt transform's effect on length shows; then on the attacked questions (clean answered correctly), before and after the perturbation.",
        Chart::HBars(HBars {
            title: "Response length, clean vs attacked".into(),
            x_desc: "mean response tokens".into(),
            labels: short_labels(&len_cells),
            series: vec![
                ("clean, all questions".into(), ALL_QUESTIONS, all_len),
                ("clean, attacked questions".into(), CLEAN, clean_len),
                ("attacked".into(), ATTACKED, att_len),
            ],
            x_max,
            percent: false,
        }),
    )?);

    // 4. Sentence similarity of successful perturbations.
    let sims = |cs: &[&CellResults]| -> Vec<f64> {
        successes(cs)
            .filter_map(|r| r.sentence_similarity.map(f64::from))
            .collect()
    };
    let (ms, bs) = (sims(&main), sims(&base));
    let lo = ms.iter().chain(&bs).cloned().fold(1.0, f64::min).min(0.8);
    let lo = (lo * 20.0).floor() / 20.0;
    let mut series = vec![("attack".to_string(), ATTACKED, ms)];
    if !base.is_empty() {
        series.push(("random baseline".to_string(), BASELINE, bs));
    }
    plots.push(render(
        "similarity",
        "Sentence similarity of successful perturbations",
        "Cosine similarity between original and perturbed question (sentence embeddings) for successful attacks.",
        Chart::Hist(Hist {
            title: "Sentence similarity of successful perturbations".into(),
            x_desc: "cosine similarity, original vs perturbed question".into(),
            series,
            lo: lo.max(-1.0),
            hi: 1.0,
            bins: (((1.0 - lo) / 0.02).round() as usize).clamp(5, 100),
            x_int: false,
        }),
    )?);

    // 5. Queries per successful attack.
    let q = |cs: &[&CellResults]| -> Vec<f64> { successes(cs).map(|r| r.queries as f64).collect() };
    let (mq, bq) = (q(&main), q(&base));
    let q_max = mq.iter().chain(&bq).cloned().fold(2.0, f64::max).ceil();
    let mut series = vec![("attack".to_string(), ATTACKED, mq)];
    if !base.is_empty() {
        series.push(("random baseline".to_string(), BASELINE, bq));
    }
    // Whole-number bins, widened so there are at most 50 of them.
    let qw = (q_max / 50.0).ceil().max(1.0);
    let bins = (q_max / qw).ceil() as usize;
    plots.push(render(
        "queries",
        "Queries per successful attack",
        "Model generations spent on each successful attack, the clean one included.",
        Chart::Hist(Hist {
            title: "Queries per successful attack".into(),
            x_desc: "model queries".into(),
            series,
            // Bins centred on whole numbers of queries.
            lo: 0.5,
            hi: 0.5 + bins as f64 * qw,
            bins,
            x_int: true,
        }),
    )?);
    Ok(plots)
}
