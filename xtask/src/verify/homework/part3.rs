//! Part 3: the convolutional network (3a–3d).

use super::*;

pub fn part3(s: &mut Suite) {
    s.add(
        "3a",
        P3,
        "3×128×128 → 32×64×64 → 32×32×32 → 64×32×32: 65 536 values",
        || {
            let net = match homework_cnn::<f32>(Init::HeUniform { seed: 1 }) {
                Ok(n) => n,
                Err(e) => return Outcome::error(e.to_string()),
            };
            let want = [
                Shape::image(32, 64, 64),
                Shape::image(32, 32, 32),
                Shape::image(64, 32, 32),
            ];
            let mut bad = net
                .shapes()
                .iter()
                .zip(&want)
                .filter(|(a, b)| a != b)
                .count();
            // and an actual forward pass produces that many values per image
            let y = net.infer(&DMatrix::from_element(3 * 128 * 128, 1, 0.5_f32));
            bad += usize::from(y.map_or(0, |y| y.nrows()) != 65_536);
            Outcome::exact(
                bad,
                "shapes by the formula ⌊(i + 2p − d(k−1) − 1)/s⌋ + 1 and by a forward pass",
            )
        },
    );
    s.add("3b", P3, "last layer: 3·3·32·64 = 18 432 weights (+ 64 biases)", || {
        match homework_cnn::<f32>(Init::Zeros) {
            Ok(net) => {
                let summary = Summary::of(&net);
                let last = &summary.rows[2];
                Outcome::exact(
                    usize::from(last.weights != 18_432) + usize::from(last.biases != 64),
                    format!("{} weights, {} biases (the answer key's 3·3·64 = 576 forgets the 32 input channels)", last.weights, last.biases),
                )
            }
            Err(e) => Outcome::error(e.to_string()),
        }
    });
    s.add(
        "3c",
        P3,
        "[1,1,4,4,4,1,1] * [¼,¼,¼,¼]: full, same, valid (kernel flipped)",
        || {
            let x = [1.0, 1.0, 4.0, 4.0, 4.0, 1.0, 1.0];
            let k = [0.25; 4];
            // numpy.convolve(x, k, mode), numpy 2.4
            let want: [(ConvMode, &[f64]); 3] = [
                (
                    ConvMode::Full,
                    &[0.25, 0.5, 1.5, 2.5, 3.25, 3.25, 2.5, 1.5, 0.5, 0.25],
                ),
                (ConvMode::Same, &[0.5, 1.5, 2.5, 3.25, 3.25, 2.5, 1.5]),
                (ConvMode::Valid, &[2.5, 3.25, 3.25, 2.5]),
            ];
            let mut err: f64 = 0.0;
            for (mode, w) in want {
                match convolve1d(&x, &k, mode) {
                    Ok(got) if got.len() == w.len() => {
                        err = err.max(max_abs(got.iter().zip(w).map(|(a, b)| a - b)))
                    }
                    _ => err = f64::INFINITY,
                }
            }
            Outcome::within(
                err,
                0.0,
                "abs",
                "exact in binary floating point; the answer key used a 3-tap kernel",
            )
        },
    );
    s.add(
        "3d",
        P3,
        "the kernel is a moving average: mass kept, variation and peak reduced",
        || {
            let x = [1.0, 1.0, 4.0, 4.0, 4.0, 1.0, 1.0];
            let full = convolve1d(&x, &[0.25; 4], ConvMode::Full).unwrap_or_default();
            let tv = |v: &[f64]| v.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>();
            let max_step = |v: &[f64]| {
                v.windows(2)
                    .map(|w| (w[1] - w[0]).abs())
                    .fold(0.0, f64::max)
            };
            let mass = (full.iter().sum::<f64>() - x.iter().sum::<f64>()).abs();
            let peak = full.iter().copied().fold(f64::MIN, f64::max);
            let mut o = Outcome::within(
                mass,
                0.0,
                "abs",
                format!(
                    "Σ kept (16); largest jump {} → {}; peak {} → {}; total variation {} → {}",
                    max_step(&x),
                    max_step(&full),
                    4.0,
                    peak,
                    tv(&x),
                    tv(&full)
                ),
            );
            o.passed &= max_step(&full) < max_step(&x) && peak < 4.0;
            o
        },
    );
}
