//! The direct products against their definitions, looped, on every instruction set this CPU
//! has. The operands are small integers, so every sum is exact in any order: each variant must
//! give exactly the looped result, in `f32` and in `f64`.

use super::*;
use crate::rng::Rng;

/// Small integers as values of `T`: exact products and sums in any order.
fn integers<T: Scalar>(rng: &mut Rng, len: usize) -> Vec<T> {
    (0..len)
        .map(|_| T::lit(rng.uniform(-4.5, 4.5).round()))
        .collect()
}

/// A `rows × cols` matrix of values in [−4.5, 4.5], rounded to integers when asked (exact
/// sums in any order) or not (the last bits show any change of order).
pub(super) fn random<T: Scalar>(
    rng: &mut Rng,
    rows: usize,
    cols: usize,
    integers: bool,
) -> nalgebra::DMatrix<T> {
    nalgebra::DMatrix::from_fn(rows, cols, |_, _| {
        let v = rng.uniform(-4.5, 4.5);
        T::lit(if integers { v.round() } else { v })
    })
}

/// `(m, k, n)` of the dense products (`affine`, `add_outer`) around the tiles (16-wide vectors,
/// up to 4 per tile, up to 8 rows), the blocks (64 output columns, 128 examples) and the split
/// threshold (2²⁰ multiply-adds).
pub(super) const SHAPES: [(usize, usize, usize); 9] = [
    (1, 1, 1),
    (3, 5, 2),
    (0, 4, 3),
    (10, 256, 128),
    (17, 33, 65),
    (256, 784, 40),
    (70, 1030, 20),
    (64, 70, 300),
    (130, 300, 129),
];

thread_local! {
    /// The instruction set a test forces on the products of this thread (`None`: the best).
    pub(super) static FORCED: std::cell::Cell<Option<Isa>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` on every variant this CPU has (each forced, not only the best), and says which
/// variants this machine cannot run, so a CPU without AVX-512 still proves the others.
fn every_variant(mut f: impl FnMut(Isa)) {
    for &isa in Isa::ALL {
        if isa.supported() {
            FORCED.set(Some(isa));
            f(isa);
            FORCED.set(None);
        } else {
            eprintln!("direct: {isa:?} not run: this CPU lacks its instructions");
        }
    }
}

/// `C (+)= A B` of [`gemm_rows`], looped.
#[allow(clippy::too_many_arguments)]
fn rows_reference<T: Scalar>(
    a: &[T],
    lda: usize,
    b: &[T],
    b_rows: RowTable<'_>,
    c: &mut [T],
    c_rows: RowTable<'_>,
    n: usize,
    segments: usize,
    write: Write<'_, T>,
) {
    for s in 0..segments {
        for (i, &ci) in c_rows.starts.iter().enumerate() {
            for j in 0..n {
                let mut sum = match write {
                    Write::Bias(bias) => bias[i],
                    _ => T::zero(),
                };
                for (l, &bl) in b_rows.starts.iter().enumerate() {
                    sum += a[l * lda + i] * b[bl + s * b_rows.step + j];
                }
                let at = ci + s * c_rows.step + j;
                c[at] = if write == Write::Accumulate {
                    c[at] + sum
                } else {
                    sum
                };
            }
        }
    }
}

/// Row starts for `rows` rows of `n` values in each of `segments` segments `step` apart:
/// disjoint (`spread`) or overlapping in arbitrary order.
fn starts(rng: &mut Rng, rows: usize, n: usize, disjoint: bool) -> Vec<usize> {
    if disjoint {
        // row i at i·(n + 3), then shuffled
        let mut s: Vec<usize> = (0..rows).map(|i| i * (n + 3)).collect();
        for i in (1..s.len()).rev() {
            s.swap(i, rng.below(i + 1));
        }
        s
    } else {
        (0..rows).map(|_| rng.below(2 * n + 5)).collect()
    }
}

fn rows_case<T: Scalar>(rng: &mut Rng, (m, k, n, segments): (usize, usize, usize, usize)) {
    let lda = m + rng.below(3);
    let a = integers::<T>(rng, k.max(1) * lda);
    let b_starts = starts(rng, k, n, false);
    let b_step = 3 * n + 7;
    let b = integers::<T>(rng, 2 * n + 5 + n + segments * b_step);
    let bias = integers::<T>(rng, m);
    for write in [Write::Overwrite, Write::Accumulate, Write::Bias(&bias)] {
        // overwritten rows are disjoint; accumulated ones may overlap
        let c_starts = starts(rng, m, n, write != Write::Accumulate);
        let c_step = m * (n + 3) + 2 * n + 5;
        let c0 = integers::<T>(rng, segments * c_step + n);
        let mut want = c0.clone();
        let (b_rows, c_rows) = (
            RowTable::new(&b_starts, b_step),
            RowTable::new(&c_starts, c_step),
        );
        rows_reference(&a, lda, &b, b_rows, &mut want, c_rows, n, segments, write);
        every_variant(|isa| {
            let mut got = c0.clone();
            gemm_rows(&a, lda, &b, b_rows, &mut got, c_rows, n, segments, write);
            assert_eq!(
                got,
                want,
                "{isa:?} {} m {m} k {k} n {n} ×{segments} {write:?}",
                T::NAME
            );
        });
    }
}

#[test]
fn gemm_rows_matches_its_definition_on_every_instruction_set() {
    let mut rng = Rng::new(11);
    // m covers every tile height and remainder, n every vector count (1–4 per tile, several
    // tiles) with and without a partial last vector, for 4-, 8- and 16-lane vectors
    for m in [1, 2, 3, 5, 7, 12, 13, 17, 25, 33] {
        for n in [
            1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 70, 129,
        ] {
            let k = [0, 1, 4, 9][rng.below(4)];
            let segments = 1 + rng.below(3);
            rows_case::<f32>(&mut rng, (m, k, n, segments));
            rows_case::<f64>(&mut rng, (m, k, n, segments));
        }
    }
}

/// `C += Σ A B` of [`gemm_positions`], looped.
#[allow(clippy::too_many_arguments)]
fn positions_reference<T: Scalar>(
    a: &[T],
    a_rows: RowTable<'_>,
    t_len: usize,
    segments: usize,
    b: &[T],
    ldb: usize,
    c: &mut [T],
    ldc: usize,
    n: usize,
) {
    for (i, &ai) in a_rows.starts.iter().enumerate() {
        for j in 0..n {
            let mut sum = c[i * ldc + j];
            for s in 0..segments {
                for t in 0..t_len {
                    sum += a[ai + s * a_rows.step + t] * b[(s * t_len + t) * ldb + j];
                }
            }
            c[i * ldc + j] = sum;
        }
    }
}

fn positions_case<T: Scalar>(rng: &mut Rng, (m, n, t_len, segments): (usize, usize, usize, usize)) {
    let a_starts = starts(rng, m, t_len, false);
    let a_step = 2 * t_len + 3;
    let a = integers::<T>(rng, 2 * t_len + 5 + t_len + segments * a_step);
    let ldb = n + rng.below(3);
    let b = integers::<T>(rng, segments * t_len * ldb + n);
    let ldc = n + rng.below(3);
    let c0 = integers::<T>(rng, m * ldc);
    let a_rows = RowTable::new(&a_starts, a_step);
    let mut want = c0.clone();
    positions_reference(&a, a_rows, t_len, segments, &b, ldb, &mut want, ldc, n);
    every_variant(|isa| {
        let mut got = c0.clone();
        gemm_positions(&a, a_rows, t_len, segments, &b, ldb, &mut got, ldc, n);
        assert_eq!(
            got,
            want,
            "{isa:?} {} m {m} n {n} t {t_len} ×{segments}",
            T::NAME
        );
    });
}

#[test]
fn gemm_positions_matches_its_definition_on_every_instruction_set() {
    let mut rng = Rng::new(12);
    for m in [1, 2, 3, 5, 6, 7, 9, 13, 25] {
        for n in [1, 3, 4, 7, 8, 9, 16, 17, 32, 33, 64, 65, 100] {
            let t_len = [1, 5, 16, 33][rng.below(4)];
            let segments = [0, 1, 2, 4][rng.below(4)];
            positions_case::<f32>(&mut rng, (m, n, t_len, segments));
            positions_case::<f64>(&mut rng, (m, n, t_len, segments));
        }
    }
}

#[test]
fn masked_lanes_write_nothing_outside_the_rows() {
    // C rows of 5 values with a guard value between them: a partial last vector must leave
    // the guards alone, in both products
    let guard = 1234.0_f32;
    let a = [1.0_f32, 2.0, 3.0];
    let b: Vec<f32> = (0..20).map(|v| v as f32).collect();
    every_variant(|isa| {
        let mut c = [guard; 13];
        gemm_rows(
            &a,
            1,
            &b,
            RowTable::new(&[0, 1, 2], 0),
            &mut c,
            RowTable::new(&[1], 6),
            5,
            2,
            Write::Overwrite,
        );
        // y[j] = x[j] + 2x[j + 1] + 3x[j + 2] = 6j + 8, in both segments (step 0 in B)
        let row = [8.0, 14.0, 20.0, 26.0, 32.0];
        assert_eq!(c[0], guard, "{isa:?}");
        assert_eq!(&c[1..6], &row, "{isa:?}");
        assert_eq!(c[6], guard, "{isa:?}");
        assert_eq!(&c[7..12], &row, "{isa:?}");
        assert_eq!(c[12], guard, "{isa:?}");

        let mut c = [0.0_f32, 0.0, 0.0, guard, 0.0, 0.0, 0.0, guard];
        // C (2 × 3, ldc 4) += Σ_t a_i[t] b[t]: rows of A are x[0..4] and x[1..5]
        gemm_positions(&b, RowTable::new(&[0, 1], 0), 4, 1, &b, 3, &mut c, 4, 3);
        // Σ_t t·(3t + j) and Σ_t (t + 1)·(3t + j) over t < 4
        let want = |i: f32, j: f32| {
            (0..4)
                .map(|t| (t as f32 + i) * (3.0 * t as f32 + j))
                .sum::<f32>()
        };
        assert_eq!(
            c,
            [
                want(0.0, 0.0),
                want(0.0, 1.0),
                want(0.0, 2.0),
                guard,
                want(1.0, 0.0),
                want(1.0, 1.0),
                want(1.0, 2.0),
                guard
            ],
            "{isa:?}"
        );
    });
}

#[test]
fn an_empty_product_leaves_c_as_it_is_or_zeroes_it() {
    let mut c = [5.0_f64; 4];
    // k = 0: C ← 0 when overwriting, unchanged when accumulating
    gemm_rows(
        &[],
        2,
        &[],
        RowTable::new(&[], 0),
        &mut c,
        RowTable::new(&[0, 2], 0),
        2,
        1,
        Write::Accumulate,
    );
    assert_eq!(c, [5.0; 4]);
    gemm_rows(
        &[],
        2,
        &[],
        RowTable::new(&[], 0),
        &mut c,
        RowTable::new(&[0, 2], 0),
        2,
        1,
        Write::Overwrite,
    );
    assert_eq!(c, [0.0; 4]);
    // no position: C unchanged
    let mut c = [5.0_f64; 4];
    gemm_positions(
        &[1.0],
        RowTable::new(&[0, 0], 0),
        1,
        0,
        &[],
        2,
        &mut c,
        2,
        2,
    );
    assert_eq!(c, [5.0; 4]);
}

#[test]
fn row_tables_know_their_rows() {
    let table = RowTable::new(&[4, 0, 9], 2);
    assert_eq!((table.len(), table.is_empty()), (3, false));
    let none = RowTable::new(&[], 2);
    assert_eq!((none.len(), none.is_empty()), (0, true));
}

/// The panic message of `f`, which must panic (a caller bug the checks must catch: the kernels
/// behind them read and write through raw pointers).
#[track_caller]
fn caller_bug(f: impl FnOnce()) -> String {
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .expect_err("an operand past its buffer must be caught before the kernel runs");
    err.downcast_ref::<String>().cloned().unwrap_or_default()
}

/// A call that must be refused, given the output buffer.
type Case<'a> = Box<dyn FnOnce(&mut [f32]) + 'a>;

#[test]
fn operands_past_their_buffers_are_caught_before_the_kernel() {
    let (a, b) = ([1.0_f32; 6], [1.0_f32; 10]);
    let rows = |starts| RowTable::new(starts, 3);
    let mut c = [0.0_f32; 10];
    // gemm_rows: m = 2 rows of C, k = 3 rows of B, n = 4, 2 segments 3 apart — first a call
    // that fits, then the same with one operand changed
    let rows_call =
        |lda: usize, b_starts: &'static [usize], c_starts: &'static [usize], write| -> Case {
            Box::new(move |c| {
                gemm_rows(&a, lda, &b, rows(b_starts), c, rows(c_starts), 4, 2, write)
            })
        };
    // gemm_positions: m = 2 rows of A (4 values, 2 segments), B 8 × n, C 2 × n
    let positions_call = |a_starts: &'static [usize], ldb: usize, ldc: usize, n: usize| -> Case {
        Box::new(move |c| gemm_positions(&b, rows(a_starts), 4, 2, &b, ldb, c, ldc, n))
    };
    rows_call(2, &[0, 1, 3], &[0, 2], Write::Overwrite)(&mut [0.0; 10]);
    let cases: Vec<(&str, Case)> = vec![
        (
            "a row of B ends at 11",
            rows_call(2, &[0, 1, 4], &[0, 2], Write::Overwrite),
        ),
        (
            "a row of C ends at 11",
            rows_call(2, &[0, 1, 3], &[0, 4], Write::Overwrite),
        ),
        (
            "A (2 × 3, lda 3)",
            rows_call(3, &[0, 1, 3], &[0, 2], Write::Overwrite),
        ),
        (
            "A (2 × 3, lda 1)",
            rows_call(1, &[0, 1, 3], &[0, 2], Write::Overwrite),
        ),
        (
            "a bias of 1 values for 2 rows",
            rows_call(2, &[0, 1, 3], &[0, 2], Write::Bias(&[1.0])),
        ),
        ("a row of A ends at 11", positions_call(&[0, 4], 1, 1, 1)),
        ("B (8 × 2, ldb 2)", positions_call(&[0, 3], 2, 2, 2)),
        ("B (8 × 2, ldb 1)", positions_call(&[0, 3], 1, 2, 2)),
        ("C (2 × 2, ldc 1)", positions_call(&[0, 3], 2, 1, 2)),
    ];
    for (what, call) in cases {
        let message = caller_bug(|| call(&mut c));
        assert!(message.contains(what), "{what}: got `{message}`");
    }
    let mut short = [0.0_f32; 3];
    let message = caller_bug(|| gemm_positions(&b, rows(&[0, 3]), 4, 2, &b, 1, &mut short, 3, 2));
    assert!(message.contains("C (2 × 2, ldc 3)"), "{message}");
}

#[test]
fn an_empty_dimension_reads_nothing() {
    // with no row of C, no column or no segment, nothing is read: operands that would be past
    // their buffers are not an error
    let far = RowTable::new(&[100, 200], 50);
    let mut c = [7.0_f64; 2];
    gemm_rows(
        &[],
        5,
        &[],
        far,
        &mut c,
        RowTable::new(&[], 0),
        4,
        2,
        Write::Overwrite,
    );
    gemm_rows(&[], 5, &[], far, &mut c, far, 0, 2, Write::Overwrite);
    gemm_rows(&[], 5, &[], far, &mut c, far, 4, 0, Write::Overwrite);
    gemm_positions(&[], far, 3, 2, &[], 1, &mut c, 1, 0);
    gemm_positions(&[], RowTable::new(&[], 0), 3, 2, &[], 1, &mut c, 1, 2);
    assert_eq!(c, [7.0; 2]);
}

/// One case of [`gemm_down_columns`] against its definition, looped, on every variant.
fn down_columns_case<T: Scalar>(rng: &mut Rng, (m, n, t_len): (usize, usize, usize)) {
    // A m × t_len column-major with 3 spare rows; B and C with 2 spare columns per row
    let (lda, ldb, ldc) = (m + 3, n + 2, n + 2);
    let a = integers::<T>(rng, lda * t_len);
    let b = integers::<T>(rng, ldb * t_len);
    let start = integers::<T>(rng, ldc * m);
    let rows: Vec<usize> = (0..m).collect();
    let mut want = start.clone();
    for i in 0..m {
        for j in 0..n {
            let mut sum = T::zero();
            for t in 0..t_len {
                sum += a[rows[i] + t * lda] * b[t * ldb + j];
            }
            want[i * ldc + j] += sum;
        }
    }
    every_variant(|isa| {
        let mut c = start.clone();
        gemm_down_columns(&a, &rows, lda, t_len, &b, ldb, &mut c, ldc, n);
        assert_eq!(c, want, "{isa:?}, m {m}, n {n}, t_len {t_len}");
    });
}

#[test]
fn gemm_down_columns_matches_its_definition_on_every_instruction_set() {
    let mut rng = Rng::new(21);
    for m in [1, 2, 5, 6, 7, 9, 13] {
        for n in [1, 4, 8, 9, 16, 17, 33, 64, 65] {
            let t_len = [1, 5, 16, 33][rng.below(4)];
            down_columns_case::<f32>(&mut rng, (m, n, t_len));
            down_columns_case::<f64>(&mut rng, (m, n, t_len));
        }
    }
}
