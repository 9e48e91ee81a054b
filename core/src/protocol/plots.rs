//! The plots of the benchmarks (plotters, SVG or PNG by the file's extension): a metric against the budget with
//! Random's mean ± sd as a band, lines of the warm loop, and the PCA map of the pool with the picks marked.
//! Behind the `plots` feature (the CLI turns it on; the browser build leaves plotters out).

use std::path::Path;

use plotters::prelude::*;

use crate::protocol::{self, RunResult};
use crate::{Context, Error, Result};

/// Line colours: matplotlib's tab10, then six more dark, distinct ones, so that all 13 cold-start strategies and
/// Random (black) get a colour of their own.
const COLORS: [RGBColor; 16] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 128),
    RGBColor(128, 0, 0),
    RGBColor(0, 128, 128),
    RGBColor(204, 163, 0),
    RGBColor(85, 107, 47),
    RGBColor(199, 21, 133),
];

/// One line per strategy: mean metric vs budget, with Random's mean ± sd as a band.
pub fn plot_metric(
    path: &Path,
    runs: &[RunResult],
    strategies: &[String],
    budgets: &[usize],
    metric: &str,
) -> Result<()> {
    let mut bs = budgets.to_vec();
    bs.sort_unstable();
    let band: Vec<(f64, f64, f64)> = bs
        .iter()
        .filter_map(|&b| protocol::cell(runs, "random", b, metric).map(|c| (b as f64, c.mean - c.sd, c.mean + c.sd)))
        .collect();
    let series: Vec<(String, Vec<(f64, f64)>)> = strategies
        .iter()
        .map(|s| {
            (
                s.clone(),
                bs.iter().filter_map(|&b| protocol::cell(runs, s, b, metric).map(|c| (b as f64, c.mean))).collect(),
            )
        })
        .collect();
    let title = format!("{metric} vs budget (Random: mean ± sd band)");
    plot_lines(path, &title, "budget (labelled images)", metric, &series, &band)
}

/// The protocol's plots in `out`, SVG and PNG: `{metric}_vs_budget` ([`plot_metric`]) and `{metric}_vs_random`:
/// each strategy's paired difference from Random per budget with its bootstrap 95 % interval as a bar, and 0.
pub fn plot_protocol(
    out: &Path,
    runs: &[RunResult],
    strategies: &[String],
    budgets: &[usize],
    metric: &str,
) -> Result<()> {
    let rows = protocol::paired::compare(runs, strategies, budgets, metric);
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    let mut bars: Vec<Vec<(f64, f64, f64)>> = Vec::new();
    for s in strategies.iter().filter(|s| s.as_str() != "random") {
        let mine: Vec<&protocol::paired::Paired> = rows.iter().filter(|r| &r.strategy == s).collect();
        series.push((s.clone(), mine.iter().map(|r| (r.budget as f64, r.mean_diff)).collect()));
        bars.push(mine.iter().map(|r| (r.budget as f64, r.ci_low, r.ci_high)).collect());
    }
    let title = format!("{metric}: strategy − Random, paired by seed (bootstrap 95 % interval)");
    for ext in ["svg", "png"] {
        plot_metric(&out.join(format!("{metric}_vs_budget.{ext}")), runs, strategies, budgets, metric)?;
        let path = out.join(format!("{metric}_vs_random.{ext}"));
        let ydesc = format!("{metric} difference");
        plot_marks(&path, &title, "budget (labelled images)", &ydesc, &series, &[], &bars)?;
    }
    Ok(())
}

/// Lines (first series named "random" in black) over an optional band, SVG or PNG by the file's extension.
pub fn plot_lines(
    path: &Path,
    title: &str,
    xdesc: &str,
    ydesc: &str,
    series: &[(String, Vec<(f64, f64)>)],
    band: &[(f64, f64, f64)],
) -> Result<()> {
    plot_marks(path, title, xdesc, ydesc, series, band, &[])
}

/// [`draw_lines`] into `path`, SVG or PNG by its extension.
#[allow(clippy::too_many_arguments)] // the file, three labels and the three kinds of marks
fn plot_marks(
    path: &Path,
    title: &str,
    xdesc: &str,
    ydesc: &str,
    series: &[(String, Vec<(f64, f64)>)],
    band: &[(f64, f64, f64)],
    bars: &[Vec<(f64, f64, f64)>],
) -> Result<()> {
    if path.extension().is_some_and(|e| e == "svg") {
        draw_lines(SVGBackend::new(path, (900, 560)).into_drawing_area(), title, xdesc, ydesc, series, band, bars)
    } else {
        draw_lines(BitMapBackend::new(path, (900, 560)).into_drawing_area(), title, xdesc, ydesc, series, band, bars)
    }
    .with_context(|| format!("plotting {}", path.display()))
}

/// Lines over an optional band; `bars[i]` (when given) are (x, low, high) interval bars of series i, and a dashed
/// zero line is drawn when the y range spans 0.
#[allow(clippy::too_many_arguments)] // the area, three labels and the three kinds of marks
fn draw_lines<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    xdesc: &str,
    ydesc: &str,
    series: &[(String, Vec<(f64, f64)>)],
    band: &[(f64, f64, f64)],
    bars: &[Vec<(f64, f64, f64)>],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| Error::External { message: format!("{e:?}") };
    root.fill(&WHITE).map_err(e)?;
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.1))
        .chain(band.iter().chain(bars.iter().flatten()).flat_map(|b| [b.1, b.2]))
        .filter(|v| v.is_finite())
        .collect();
    let xs: Vec<f64> = series.iter().flat_map(|(_, p)| p.iter().map(|q| q.0)).collect();
    let (lo, hi) = ys.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let (lo, hi) = if lo <= hi { (lo - 0.03, hi + 0.03) } else { (0.0, 1.0) };
    let (x0, x1) = xs.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let (x0, x1) = if x0 <= x1 { (x0, x1) } else { (0.0, 1.0) };
    let pad = ((x1 - x0) * 0.05).max(1.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d((x0 - pad)..(x1 + pad), lo..hi)
        .map_err(e)?;
    chart.configure_mesh().x_desc(xdesc).y_desc(ydesc).draw().map_err(e)?;
    if band.len() > 1 {
        let poly: Vec<(f64, f64)> =
            band.iter().map(|&(b, l, _)| (b, l)).chain(band.iter().rev().map(|&(b, _, h)| (b, h))).collect();
        chart.draw_series(std::iter::once(Polygon::new(poly, BLACK.mix(0.12)))).map_err(e)?;
    }
    if lo < 0.0 && hi > 0.0 && !bars.is_empty() {
        let zero = DashedLineSeries::new(vec![(x0 - pad, 0.0), (x1 + pad, 0.0)], 6, 4, BLACK.stroke_width(1));
        chart.draw_series(zero).map_err(e)?;
    }
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = if name == "random" { BLACK } else { COLORS[i % COLORS.len()] };
        if let Some(b) = bars.get(i) {
            // Offset each strategy's bars a little so they do not hide each other.
            let dx = (i as f64 - series.len() as f64 / 2.0) * pad * 0.08;
            let segs = b.iter().filter(|v| v.1.is_finite() && v.2.is_finite());
            chart
                .draw_series(
                    segs.map(|&(x, l, h)| PathElement::new(vec![(x + dx, l), (x + dx, h)], color.stroke_width(2))),
                )
                .map_err(e)?;
        }
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(e)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(e)?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

pub fn plot_pca(
    path: &Path,
    f: &crate::features::Features,
    picks: &[String],
    strategy: &str,
    budget: usize,
) -> Result<()> {
    let x = crate::select::Matrix::new(&f.data, f.ids.len(), f.dim)?;
    let pts = crate::select::pca::pca2(x);
    let picked: std::collections::HashSet<&str> = picks.iter().map(String::as_str).collect();
    let is_svg = path.extension().is_some_and(|e| e == "svg");
    let title = format!("training pool, PCA of the features; {strategy} picks at budget {budget}");
    if is_svg {
        draw_pca(SVGBackend::new(path, (760, 600)).into_drawing_area(), &pts, &f.ids, &picked, &title)
    } else {
        draw_pca(BitMapBackend::new(path, (760, 600)).into_drawing_area(), &pts, &f.ids, &picked, &title)
    }
    .with_context(|| format!("plotting {}", path.display()))
}

fn draw_pca<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    pts: &[[f32; 2]],
    ids: &[String],
    picked: &std::collections::HashSet<&str>,
    title: &str,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| Error::External { message: format!("{e:?}") })?;
    let (mut x0, mut x1, mut y0, mut y1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    for p in pts {
        x0 = x0.min(p[0]);
        x1 = x1.max(p[0]);
        y0 = y0.min(p[1]);
        y1 = y1.max(p[1]);
    }
    let (dx, dy) = (((x1 - x0) * 0.05).max(1e-3), ((y1 - y0) * 0.05).max(1e-3));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d((x0 - dx)..(x1 + dx), (y0 - dy)..(y1 + dy))
        .map_err(|e| Error::External { message: format!("{e:?}") })?;
    chart
        .configure_mesh()
        .x_desc("PC 1")
        .y_desc("PC 2")
        .draw()
        .map_err(|e| Error::External { message: format!("{e:?}") })?;
    chart
        .draw_series(
            pts.iter()
                .zip(ids)
                .filter(|(_, id)| !picked.contains(id.as_str()))
                .map(|(p, _)| Circle::new((p[0], p[1]), 2, RGBColor(140, 149, 159).filled())),
        )
        .map_err(|e| Error::External { message: format!("{e:?}") })?;
    chart
        .draw_series(
            pts.iter()
                .zip(ids)
                .filter(|(_, id)| picked.contains(id.as_str()))
                .map(|(p, _)| Circle::new((p[0], p[1]), 5, RGBColor(207, 34, 46).filled())),
        )
        .map_err(|e| Error::External { message: format!("{e:?}") })?;
    root.present().map_err(|e| Error::External { message: format!("{e:?}") })?;
    Ok(())
}
