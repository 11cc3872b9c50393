//! The shipped MNIST files, and the loader's errors on bad directories and files.

use std::path::{Path, PathBuf};

use retroprop_data::{DataError, Images, Mnist, Source, mnist};

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
}

#[test]
fn the_shipped_mnist_loads_with_the_standard_counts() {
    let mnist = Mnist::load(shipped()).unwrap();
    assert_eq!((mnist.train.len(), mnist.test.len()), (60_000, 10_000));
    assert_eq!(mnist.train.shape(), (28, 28));
    // every digit is present, in the known proportions (5421 fives … 6742 ones in train)
    let mut counts = [0usize; 10];
    for y in mnist.train.labels() {
        counts[y] += 1;
    }
    assert_eq!(
        counts,
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    // batches cover the split exactly once, values in [0, 1]
    let mut batches = mnist.test.batches::<f32>(128, 1);
    let (mut seen, mut steps) = (0, 0);
    while let Some((x, labels)) = batches.next() {
        assert_eq!(x.nrows(), 784);
        assert_eq!(x.ncols(), labels.len());
        assert!(x.iter().all(|&v| (0.0..=1.0).contains(&v)));
        seen += labels.len();
        steps += 1;
    }
    assert_eq!((seen, steps), (10_000, 79));
}

#[test]
fn a_validation_split_is_seeded_and_disjoint() {
    let mnist = Mnist::load(shipped()).unwrap();
    let mut a = mnist.test.clone();
    let val_a = a.split_validation(1000, 3);
    let mut b = mnist.test;
    let val_b = b.split_validation(1000, 3);
    assert_eq!(val_a, val_b);
    assert_eq!((a.len(), val_a.len()), (9000, 1000));
    let (x, labels) = val_a.to_matrix::<f64>();
    assert_eq!(x.shape(), (784, 1000));
    assert_eq!(labels.len(), 1000);
    assert_eq!(Source::<f64>::features(&val_a), 784);
}

#[test]
fn missing_data_is_explained() {
    let err = Mnist::load("/no/such/dir").unwrap_err();
    assert!(matches!(err, DataError::MissingDirectory { .. }));
    let message = err.to_string();
    assert!(
        message.contains("/no/such/dir") && message.contains("--data"),
        "{message}"
    );
    let empty = std::env::temp_dir().join(format!("retroprop-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    assert!(matches!(
        Mnist::load(&empty),
        Err(DataError::MissingFile { .. })
    ));
    std::fs::remove_dir_all(&empty).unwrap();
}

#[test]
fn mismatched_and_invalid_labels_are_errors() {
    let file = Path::new("labels");
    assert!(matches!(
        Images::new(2, 2, 10, vec![0; 12], vec![1, 2], file),
        Err(DataError::CountMismatch {
            images: 3,
            labels: 2,
            ..
        })
    ));
    assert!(matches!(
        Images::new(2, 2, 10, vec![0; 8], vec![1, 10], file),
        Err(DataError::LabelOutOfRange {
            index: 1,
            label: 10,
            classes: 10,
            ..
        })
    ));
    // any number of classes: two-class images take labels 0 and 1 only
    let two = Images::new(2, 2, 2, vec![0; 8], vec![1, 0], file).unwrap();
    assert_eq!(Source::<f32>::classes(&two), 2);
    assert!(Images::new(2, 2, 2, vec![0; 8], vec![1, 2], file).is_err());
}

#[test]
fn raw_and_gzip_files_read_the_same() {
    let dir = std::env::temp_dir().join(format!("retroprop-raw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in mnist::FILES {
        let gz = std::fs::read(shipped().join(format!("{name}.gz"))).unwrap();
        let raw = retroprop_data::idx::decompress(gz, Path::new(name)).unwrap();
        std::fs::write(dir.join(name), raw).unwrap(); // no .gz: detected by content anyway
    }
    let raw = Mnist::load(&dir).unwrap();
    let gz = Mnist::load(shipped()).unwrap();
    assert_eq!(raw, gz);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pixels_are_byte_over_255_exactly() {
    // 255 → exactly 1, 0 → 0, 128 → 128/255 (correctly rounded, in both scalar types)
    assert_eq!(retroprop_data::pixel::<f32>(255), 1.0);
    assert_eq!(retroprop_data::pixel::<f64>(255), 1.0);
    assert_eq!(retroprop_data::pixel::<f64>(0), 0.0);
    assert_eq!(retroprop_data::pixel::<f64>(128), 128.0 / 255.0);
    assert_eq!(retroprop_data::pixel::<f32>(128), 128.0_f32 / 255.0);
    for b in 0..=255u8 {
        assert_eq!(retroprop_data::pixel::<f32>(b), f32::from(b) / 255.0);
        assert_eq!(retroprop_data::pixel::<f64>(b), f64::from(b) / 255.0);
    }
    // the batches, the whole-set matrix and the single column all use that conversion
    let mnist = Mnist::load(shipped()).unwrap();
    let test = mnist.test.take(300);
    let (x, _) = test.to_matrix::<f64>();
    let mut batches = test.batches::<f32>(100, 4);
    let (xb, _) = batches.next().unwrap();
    let mut order: Vec<usize> = (0..300).collect();
    retroprop_core::rng::Rng::new(4).shuffle(&mut order);
    for i in 0..300 {
        let bytes = test.image(i).unwrap();
        let column = test.column::<f64>(i).unwrap();
        for (k, &b) in bytes.iter().enumerate() {
            let want = f64::from(b) / 255.0;
            assert_eq!((x[(k, i)], column[k]), (want, want), "image {i}, pixel {k}");
        }
    }
    for (col, &i) in order[..100].iter().enumerate() {
        for (k, &b) in test.image(i).unwrap().iter().enumerate() {
            assert_eq!(
                xb[(k, col)],
                f32::from(b) / 255.0,
                "batch column {col}, pixel {k}"
            );
        }
    }
    // a byte of 255 somewhere in the set is exactly 1.0
    assert!(x.iter().any(|&v| v == 1.0));
}

#[test]
fn huge_image_indices_are_none_not_a_wrapped_image() {
    let mnist = Mnist::load(shipped()).unwrap();
    assert!(mnist.test.image(1 << 60).is_none());
    assert!(mnist.test.image(usize::MAX).is_none());
    assert!(mnist.test.column::<f32>(usize::MAX).is_none());
    assert!(mnist.test.label(usize::MAX).is_none());
}

#[test]
fn a_new_batch_is_normalised_while_loading_with_the_bits_of_a_second_pass() {
    use retroprop_core::Normalize;
    use retroprop_data::InMemory;
    let mnist = Mnist::load(shipped()).unwrap();
    let test = mnist.test.take(300);
    // shuffled indices, with a repeat; 70 images are converted in two halves, 3 in one
    let mut order: Vec<usize> = (0..300).collect();
    retroprop_core::rng::Rng::new(9).shuffle(&mut order);
    order[5] = order[6];
    for n in [0, 3, 70] {
        let indices = &order[..n];
        let mut raw = nalgebra::DMatrix::<f32>::zeros(784, n);
        let mut labels = Vec::new();
        test.gather(indices, &mut raw, &mut labels);
        let normalize = Normalize::new(mnist::MEAN as f32, mnist::STD as f32);
        let mut new_labels = vec![99];
        let x = test.gather_new(indices, &mut new_labels, normalize);
        assert_eq!(x, raw.map(|v| normalize.apply(v)), "{n} images");
        assert_eq!(new_labels, labels);
        // the identity keeps the pixels; the default (a source that stores values) agrees
        assert_eq!(
            test.gather_new(indices, &mut new_labels, Normalize::identity()),
            raw
        );
        let (all, all_labels) = test.to_matrix::<f32>();
        let stored = InMemory::new(all, all_labels, 10).unwrap();
        assert_eq!(stored.gather_new(indices, &mut new_labels, normalize), x);
        assert_eq!(new_labels, labels);
    }
}
