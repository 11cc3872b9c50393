//! Run-time CPU dispatch for the generic loops of the layers and optimizers: the build targets
//! the baseline x86-64 (SSE2), and the hot loops are compiled a second time for x86-64-v3
//! (AVX2, FMA, BMI — every x86-64 CPU since Haswell, 2013, and Zen 1), chosen once per call
//! by CPU detection.
//!
//! So a binary runs on any x86-64 CPU, and a crate that depends on retroprop from its own
//! workspace — without our `.cargo/config.toml` — gets the same vectorised loops as our own
//! builds. The variants compute the same bits: Rust never contracts `a·b + c` into an FMA on its
//! own, and a vectorised element-wise loop performs the same operations on each element.
//!
//! ```
//! use retroprop_core::simd::vectorized;
//!
//! let mut x = vec![1.5_f32; 1000];
//! // the closure is inlined into each compiled variant: its loop vectorises 8-wide on AVX2
//! vectorized(#[inline(always)] || {
//!     for v in &mut x {
//!         *v = v.max(2.0) * 3.0;
//!     }
//! });
//! assert!(x.iter().all(|&v| v == 6.0));
//! ```
#![allow(unsafe_code)]

/// An instruction set a [`vectorized`] call can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// x86-64-v3: AVX2, FMA, BMI1/2, LZCNT, MOVBE, F16C.
    #[cfg(target_arch = "x86_64")]
    X86V3,
    /// The target's baseline (SSE2 on x86-64).
    Baseline,
}

impl Isa {
    /// Every variant, best first.
    pub const ALL: &'static [Isa] = &[
        #[cfg(target_arch = "x86_64")]
        Isa::X86V3,
        Isa::Baseline,
    ];

    /// Whether this CPU runs the variant (std caches the CPUID answer: a load and a test).
    #[inline]
    pub fn supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::X86V3 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                    && std::arch::is_x86_feature_detected!("bmi1")
                    && std::arch::is_x86_feature_detected!("bmi2")
                    && std::arch::is_x86_feature_detected!("lzcnt")
                    && std::arch::is_x86_feature_detected!("movbe")
                    && std::arch::is_x86_feature_detected!("f16c")
            }
            Isa::Baseline => true,
        }
    }

    /// The best variant this CPU runs.
    #[inline]
    pub fn best() -> Isa {
        Isa::ALL
            .iter()
            .copied()
            .find(|isa| isa.supported())
            .unwrap_or(Isa::Baseline)
    }
}

/// Runs `f` compiled for the best instruction set of this CPU ([`Isa::best`]).
///
/// Mark the closure `#[inline(always)]` (as in the module's example) and keep the loop inside
/// it, or in functions marked `#[inline(always)]`: code that is not inlined into the variant
/// runs as compiled for the baseline. The closure runs exactly once, on the calling thread.
#[inline]
pub fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    vectorized_on(Isa::best(), f)
}

/// As [`vectorized`], on the variant `isa` (the tests run every variant the CPU supports, so
/// each compiled path is proven, not only the one this machine picks); a variant this CPU lacks
/// runs the baseline instead.
#[inline]
pub fn vectorized_on<R>(isa: Isa, f: impl FnOnce() -> R) -> R {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `supported()` checked that the CPU has the variant's features.
        Isa::X86V3 if isa.supported() => unsafe { x86_v3(f) },
        _ => f(),
    }
}

/// # Safety
/// The CPU has the features of [`Isa::X86V3`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt,movbe,f16c")]
unsafe fn x86_v3<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Asks the CPU to bring the cache lines of `data` into its nearest cache, ahead of reading
/// them — for data read from places the hardware prefetcher cannot guess, such as the images
/// of a shuffled batch. A hint: it changes no value, and does nothing on other architectures.
///
/// ```
/// let image = vec![0u8; 784];
/// retroprop_core::simd::prefetch(&image);
/// ```
#[inline]
pub fn prefetch<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let bytes = size_of_val(data);
        let start = data.as_ptr().cast::<i8>();
        // every 64 bytes, and the last byte: each line the slice touches
        for off in (0..bytes).step_by(64).chain(bytes.checked_sub(1)) {
            // SAFETY: `off < bytes`, so the address is inside `data`; a prefetch reads nothing
            // the program sees and never faults.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.add(off)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_computes_the_same_bits() {
        let x: Vec<f32> = (0..1003).map(|i| (i as f32 * 0.37).sin() * 50.0).collect();
        let run = |isa| {
            vectorized_on(
                isa,
                #[inline(always)]
                || {
                    x.iter()
                        .map(|&v| (v.max(0.0) * 1.1 - 0.3) / 7.0)
                        .collect::<Vec<f32>>()
                },
            )
        };
        let baseline = run(Isa::Baseline);
        for &isa in Isa::ALL {
            assert_eq!(run(isa), baseline, "{isa:?}");
        }
        assert_eq!(
            vectorized(
                #[inline(always)]
                || 2 + 2
            ),
            4
        );
    }

    #[test]
    fn the_best_variant_is_supported() {
        assert!(Isa::best().supported());
        assert!(Isa::Baseline.supported());
    }
}
