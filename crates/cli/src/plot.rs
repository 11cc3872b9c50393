//! Learning curves as a self-contained SVG: loss and accuracy per epoch, train and test.

use std::fmt::Write;

/// One series of a panel.
struct Series<'a> {
    label: &'a str,
    color: &'a str,
    values: &'a [f64],
}

const WIDTH: f64 = 420.0;
const HEIGHT: f64 = 280.0;
const MARGIN: f64 = 48.0;

/// A panel at horizontal offset `x0`: axes, ticks, one polyline per series, a legend.
fn panel(
    out: &mut String,
    x0: f64,
    title: &str,
    series: &[Series<'_>],
    percent: bool,
    legend_low: bool,
) {
    let all: Vec<f64> = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(|v| v.is_finite())
        .collect();
    let (mut lo, mut hi) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        hi = lo + 1.0;
    }
    let pad = 0.05 * (hi - lo);
    let (lo, hi) = (lo - pad, hi + pad);
    let n = series
        .iter()
        .map(|s| s.values.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let px = |i: usize| x0 + MARGIN + (WIDTH - 1.5 * MARGIN) * i as f64 / (n - 1) as f64;
    let py = |v: f64| MARGIN + (HEIGHT - 2.0 * MARGIN) * (hi - v) / (hi - lo);
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="24" font-size="15" font-weight="bold">{title}</text>"#,
        x0 + MARGIN
    );
    let _ = writeln!(
        out,
        r##"<rect x="{:.1}" y="{MARGIN}" width="{:.1}" height="{:.1}" fill="none" stroke="#888"/>"##,
        x0 + MARGIN,
        WIDTH - 1.5 * MARGIN,
        HEIGHT - 2.0 * MARGIN
    );
    for k in 0..=4 {
        let v = lo + (hi - lo) * f64::from(k) / 4.0;
        let label = if percent {
            format!("{:.1}%", 100.0 * v)
        } else {
            format!("{v:.3}")
        };
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="#444">{label}</text>"##,
            x0 + MARGIN - 4.0,
            py(v) + 3.0
        );
    }
    for i in 0..n {
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#444">{}</text>"##,
            px(i),
            HEIGHT - MARGIN + 14.0,
            i + 1
        );
    }
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">epoch</text>"##,
        x0 + WIDTH / 2.0 + MARGIN / 4.0,
        HEIGHT - 10.0
    );
    for (k, s) in series.iter().enumerate() {
        let points: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, &v)| format!("{:.1},{:.1}", px(i), py(v)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            s.color,
            points.join(" ")
        );
        for p in &points {
            let (cx, cy) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(
                out,
                r#"<circle cx="{cx}" cy="{cy}" r="2.5" fill="{}"/>"#,
                s.color
            );
        }
        // the legend goes where the curves are not: top right for falling curves, bottom right
        // for rising ones
        let top = if legend_low {
            HEIGHT - MARGIN - 14.0 * series.len() as f64 - 4.0
        } else {
            MARGIN
        };
        let ly = top + 14.0 + 14.0 * k as f64;
        let lx = x0 + WIDTH - 1.5 * MARGIN - 40.0;
        let _ = writeln!(
            out,
            r#"<line x1="{lx:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-width="2"/>"#,
            ly - 4.0,
            lx + 14.0,
            ly - 4.0,
            s.color
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{ly:.1}" font-size="11">{}</text>"#,
            lx + 18.0,
            s.label
        );
    }
}

/// The two panels side by side.
pub fn curves(
    train_loss: &[f64],
    test_loss: &[f64],
    train_acc: &[f64],
    test_acc: &[f64],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{HEIGHT}" font-family="sans-serif">"#,
        2.0 * WIDTH
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    panel(
        &mut out,
        0.0,
        "loss (cross-entropy)",
        &[
            Series {
                label: "train",
                color: "#1f77b4",
                values: train_loss,
            },
            Series {
                label: "test",
                color: "#d62728",
                values: test_loss,
            },
        ],
        false,
        false,
    );
    panel(
        &mut out,
        WIDTH,
        "accuracy",
        &[
            Series {
                label: "train",
                color: "#1f77b4",
                values: train_acc,
            },
            Series {
                label: "test",
                color: "#d62728",
                values: test_acc,
            },
        ],
        true,
        true,
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_both_panels_and_every_point() {
        let svg = curves(
            &[0.5, 0.3, 0.2],
            &[0.4, 0.3, 0.25],
            &[0.9, 0.95, 0.97],
            &[0.92, 0.95, 0.96],
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert_eq!(svg.matches("<circle").count(), 12);
        assert!(svg.contains("accuracy") && svg.contains("96."));
        // a single epoch, or constant values, still draw
        let one = curves(&[0.5], &[0.5], &[0.9], &[0.9]);
        assert_eq!(one.matches("<circle").count(), 4);
    }
}
