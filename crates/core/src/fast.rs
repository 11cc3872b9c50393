//! Vectorisable `f32` kernels for the hot element-wise work of training (exp, σ, softplus).
//!
//! A scalar `libm` call per element (tens of nanoseconds) would cost as much as the GEMMs of an
//! MLP epoch: 60 000 × 256 softplus and σ values. These kernels are written branch-free (selects
//! and bit manipulation only) so that LLVM vectorises the loops; each is compiled three times —
//! AVX-512, AVX2+FMA and the baseline — and chosen once per call by run-time CPU detection, so
//! binaries stay portable while using the best instructions the machine has.
//!
//! ```text
//! exp(x)      = 2ⁿ · e^r,  n = round(x / ln 2),  r = x − n ln 2 ∈ [−ln2/2, ln2/2]
//!               e^r by its Taylor polynomial of degree 7 (truncation < 6·10⁻⁹ relative),
//!               n ln 2 split in two (Cody–Waite) so r is exact, 2ⁿ built from exponent bits
//!               in two halves so that subnormal results are right.
//! σ(x)        = 1 / (1 + e)        if x ≥ 0,   e / (1 + e)  if x < 0,     e = exp(−|x|)
//! softplus(x) = max(x, 0) + ln(1 + e),  ln(1 + e) = 2 atanh(s) = 2 Σₖ s²ᵏ⁺¹/(2k+1),
//!               s = e / (2 + e) ∈ [0, 1/3]  (8 terms: truncation < 1.5·10⁻⁸ relative)
//! ```
//!
//! Every formula is exact at the extremes: `softplus(1000) = 1000`, `softplus(−1000) = 0`,
//! `σ(±1000) = 1 / 0`; NaN propagates. Accuracy against `f64` is bounded by this module's tests.
#![allow(unsafe_code)]

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// `ln 2` split as `LN2_HI + LN2_LO`; `LN2_HI` has 9 significant bits so `n · LN2_HI` is exact.
const LN2_HI: f32 = 355.0 / 512.0;
const LN2_LO: f32 = -2.121_944_4e-4;
/// `1.5 · 2²³`: adding it rounds to an integer held in the low mantissa bits.
const MAGIC: f32 = 12_582_912.0;

/// `a · b + c`, fused when the instruction exists in the compiled variant.
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// `2^k` for `k ∈ [−126, 127]`, from the exponent bits.
#[inline(always)]
fn pow2i(k: i32) -> f32 {
    f32::from_bits((k.wrapping_add(127) as u32) << 23)
}

/// `exp(x)`, branch-free.
#[inline(always)]
fn exp1<const FMA: bool>(x: f32) -> f32 {
    // Clamp keeps n in [−150, 128]; `clamp` keeps NaN as NaN.
    let xc = x.clamp(-104.0, 89.0);
    let t = madd::<FMA>(xc, LOG2E, MAGIC);
    let n = t - MAGIC;
    let ni = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let r = madd::<FMA>(-n, LN2_LO, madd::<FMA>(-n, LN2_HI, xc));
    // Taylor polynomial of e^r, Horner form.
    let mut p = 1.0 / 5040.0;
    p = madd::<FMA>(p, r, 1.0 / 720.0);
    p = madd::<FMA>(p, r, 1.0 / 120.0);
    p = madd::<FMA>(p, r, 1.0 / 24.0);
    p = madd::<FMA>(p, r, 1.0 / 6.0);
    p = madd::<FMA>(p, r, 0.5);
    p = madd::<FMA>(p, r, 1.0);
    p = madd::<FMA>(p, r, 1.0);
    // 2ⁿ in two factors, each a normal number, so 2⁻¹⁵⁰ … 2¹²⁸ all scale correctly.
    let n1 = ni >> 1;
    let n2 = ni.wrapping_sub(n1);
    p * pow2i(n1) * pow2i(n2)
}

/// `ln(1 + e)` for `e ∈ [0, 1]` (or NaN) through `2 atanh(e / (2 + e))`.
#[inline(always)]
fn log1p_unit<const FMA: bool>(e: f32) -> f32 {
    let s = e / (2.0 + e);
    let s2 = s * s;
    let mut p = 1.0 / 15.0;
    p = madd::<FMA>(p, s2, 1.0 / 13.0);
    p = madd::<FMA>(p, s2, 1.0 / 11.0);
    p = madd::<FMA>(p, s2, 1.0 / 9.0);
    p = madd::<FMA>(p, s2, 1.0 / 7.0);
    p = madd::<FMA>(p, s2, 1.0 / 5.0);
    p = madd::<FMA>(p, s2, 1.0 / 3.0);
    p = madd::<FMA>(p, s2, 1.0);
    2.0 * s * p
}

/// `(softplus(x), σ(x))` from one exponential.
#[inline(always)]
fn softplus_sigmoid1<const FMA: bool>(x: f32) -> (f32, f32) {
    let e = exp1::<FMA>(-x.abs());
    let pos = if x > 0.0 { x } else { 0.0 };
    let r = 1.0 / (1.0 + e);
    let sig = if x >= 0.0 { r } else { e * r };
    (pos + log1p_unit::<FMA>(e), sig)
}

#[inline(always)]
fn sigmoid1<const FMA: bool>(x: f32) -> f32 {
    let e = exp1::<FMA>(-x.abs());
    let r = 1.0 / (1.0 + e);
    if x >= 0.0 { r } else { e * r }
}

#[inline(always)]
fn exp_in_place_generic<const FMA: bool>(x: &mut [f32]) {
    for v in x {
        *v = exp1::<FMA>(*v);
    }
}

#[inline(always)]
fn softplus_sigmoid_generic<const FMA: bool>(x: &[f32], sp: &mut [f32], sig: &mut [f32]) {
    for ((&x, sp), sig) in x.iter().zip(sp).zip(sig) {
        let (a, b) = softplus_sigmoid1::<FMA>(x);
        *sp = a;
        *sig = b;
    }
}

#[inline(always)]
fn sigmoid_generic<const FMA: bool>(x: &[f32], out: &mut [f32]) {
    for (&x, o) in x.iter().zip(out) {
        *o = sigmoid1::<FMA>(x);
    }
}

/// A compiled variant of the kernels: one per instruction set the dispatcher can choose (also
/// the variants of [`crate::direct`]'s products).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Baseline,
}

impl Isa {
    /// Every variant, best first.
    #[cfg(test)]
    pub(crate) const ALL: &'static [Isa] = &[
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2,
        Isa::Baseline,
    ];

    /// Whether this CPU has the instructions of the variant (std caches the CPUID answer: a
    /// few loads and tests).
    #[inline]
    pub(crate) fn supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            Isa::Baseline => true,
        }
    }
}

/// The best variant this CPU runs.
#[inline]
pub(crate) fn isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    for which in [Isa::Avx512, Isa::Avx2] {
        if which.supported() {
            return which;
        }
    }
    Isa::Baseline
}

/// Generates the run-time dispatch for one kernel: an AVX-512 and an AVX2+FMA compilation of
/// the same generic body, and the baseline. `$name` runs the best variant of this CPU; `$on`
/// runs a chosen one (the tests force every variant the CPU supports, so each compiled path is
/// proven, not only the one this machine would pick).
macro_rules! dispatch {
    ($(#[$doc:meta])* $name:ident, $on:ident => $generic:ident ($($arg:ident : $ty:ty),*)) => {
        $(#[$doc])*
        pub(crate) fn $name($($arg: $ty),*) {
            $on(isa(), $($arg),*)
        }

        /// As the kernel of the same name, on the variant `which`; a variant this CPU lacks
        /// runs the baseline instead.
        #[inline]
        fn $on(which: Isa, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn avx512($($arg: $ty),*) {
                    $generic::<true>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) {
                    $generic::<true>($($arg),*)
                }
                match which {
                    // SAFETY: `supported()` checked that the CPU has these features.
                    Isa::Avx512 if which.supported() => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above.
                    Isa::Avx2 if which.supported() => return unsafe { avx2($($arg),*) },
                    _ => {}
                }
            }
            let _ = which;
            $generic::<false>($($arg),*)
        }
    };
}

dispatch!(
    /// `x ← exp(x)`.
    exp_in_place, exp_in_place_on => exp_in_place_generic(x: &mut [f32])
);
dispatch!(
    /// `sp ← softplus(x)`, `sig ← σ(x)`.
    softplus_sigmoid, softplus_sigmoid_on => softplus_sigmoid_generic(x: &[f32], sp: &mut [f32], sig: &mut [f32])
);
dispatch!(
    /// `out ← σ(x)`.
    sigmoid_into, sigmoid_into_on => sigmoid_generic(x: &[f32], out: &mut [f32])
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Error in units of the f32 spacing at the reference value (subnormals count from the
    /// smallest subnormal spacing, so tiny absolute errors there stay small).
    fn ulps(got: f32, want: f64) -> f64 {
        let spacing = (f64::from(f32::EPSILON) * want.abs()).max(f64::from(f32::from_bits(1)));
        (f64::from(got) - want).abs() / spacing
    }

    /// A deterministic sweep of finite inputs: dense near 0, geometric out to ±1000.
    fn sweep() -> Vec<f32> {
        let mut xs = vec![
            0.0, -0.0, 1e-30, -1e-30, 1e-8, -1e-8, 88.72, 88.73, -87.3, -103.0,
        ];
        let mut x = 1e-6_f64;
        while x < 1100.0 {
            xs.push(x as f32);
            xs.push(-x as f32);
            x *= 1.003;
        }
        for i in -20_000..=20_000 {
            xs.push(i as f32 * 1e-3);
        }
        xs
    }

    #[track_caller]
    fn assert_within(name: &str, x: f32, got: f32, want: f64, max_ulps: f64) {
        if (want as f32).is_infinite() {
            // Beyond f32::MAX the correctly rounded answer is ∞.
            assert_eq!(got, want as f32, "{name}({x})");
            return;
        }
        let e = ulps(got, want);
        assert!(
            e <= max_ulps,
            "{name}({x}) = {got}, want {want}: {e:.2} ulps"
        );
    }

    /// Runs `f` on every variant this CPU supports (each forced, not only the best), and says
    /// which variants this machine cannot run, so a run on a CPU without AVX-512 still proves
    /// the AVX2 and baseline paths.
    fn all_variants(f: impl Fn(Isa)) {
        for &which in Isa::ALL {
            if which.supported() {
                f(which);
            } else {
                eprintln!("fast.rs: {which:?} not run: this CPU lacks its instructions");
            }
        }
    }

    #[test]
    fn every_variant_the_dispatcher_can_choose_is_tested() {
        // the baseline always runs, and the best variant of this CPU is among those forced
        assert!(Isa::Baseline.supported());
        assert!(Isa::ALL.contains(&isa()) && isa().supported());
    }

    #[test]
    fn exp_is_within_two_ulps_of_f64() {
        all_variants(|which| {
            let xs = sweep();
            let mut ys = xs.clone();
            exp_in_place_on(which, &mut ys);
            for (&x, &y) in xs.iter().zip(&ys) {
                // f64::exp is correctly rounded to within 1 ulp of f64: an exact reference here.
                assert_within("exp", x, y, f64::from(x).exp(), 2.0);
            }
        });
    }

    #[test]
    fn exp_extremes_and_nan() {
        all_variants(|which| {
            let mut ys = [
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::NAN,
                1000.0,
                -1000.0,
                0.0,
            ];
            exp_in_place_on(which, &mut ys);
            assert_eq!(ys[0], f32::INFINITY);
            assert_eq!(ys[1], 0.0);
            assert!(ys[2].is_nan());
            assert_eq!(ys[3], f32::INFINITY);
            assert_eq!(ys[4], 0.0);
            assert_eq!(ys[5], 1.0);
        });
    }

    #[test]
    fn softplus_and_sigmoid_are_within_four_ulps_of_f64() {
        all_variants(|which| {
            let xs = sweep();
            let mut sp = vec![0.0; xs.len()];
            let mut sg = vec![0.0; xs.len()];
            softplus_sigmoid_on(which, &xs, &mut sp, &mut sg);
            for i in 0..xs.len() {
                let x = f64::from(xs[i]);
                let e = (-x.abs()).exp();
                let want_sp = x.max(0.0) + e.ln_1p();
                let want_sg = if x >= 0.0 {
                    1.0 / (1.0 + e)
                } else {
                    e / (1.0 + e)
                };
                assert_within("softplus", xs[i], sp[i], want_sp, 4.0);
                assert_within("sigmoid", xs[i], sg[i], want_sg, 4.0);
            }
        });
    }

    #[test]
    fn softplus_sigmoid_extremes_and_nan() {
        all_variants(|which| {
            let xs = [1000.0, -1000.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
            let (mut sp, mut sg) = ([0.0; 5], [0.0; 5]);
            softplus_sigmoid_on(which, &xs, &mut sp, &mut sg);
            assert_eq!((sp[0], sg[0]), (1000.0, 1.0));
            assert_eq!((sp[1], sg[1]), (0.0, 0.0));
            assert!(sp[2].is_nan() && sg[2].is_nan());
            assert_eq!((sp[3], sg[3]), (f32::INFINITY, 1.0));
            assert_eq!((sp[4], sg[4]), (0.0, 0.0));
        });
    }

    #[test]
    fn sigmoid_kernel_matches_the_fused_one() {
        all_variants(|which| {
            let xs = sweep();
            let mut a = vec![0.0; xs.len()];
            let mut sp = vec![0.0; xs.len()];
            let mut b = vec![0.0; xs.len()];
            sigmoid_into_on(which, &xs, &mut a);
            softplus_sigmoid_on(which, &xs, &mut sp, &mut b);
            assert_eq!(a, b, "{which:?}");
        });
    }

    #[test]
    fn the_dispatched_kernels_run_the_best_variant() {
        let xs = sweep();
        let (mut a, mut b) = (xs.clone(), xs);
        exp_in_place(&mut a);
        exp_in_place_on(isa(), &mut b);
        assert_eq!(a, b);
    }
}
