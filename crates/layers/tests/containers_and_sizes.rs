//! The residual container's forwarding to its children, the standardising layer's buffers,
//! state dicts that do not fit, and the sizes a layer refuses before allocating anything —
//! tested in this crate (mutation testing runs each crate's own tests).

use nalgebra::DMatrix;
use retroprop_layers::{
    BatchNorm, BatchNormConfig, Conv2dConfig, Dense, Dropout, Init, Layer, LayerError, LayerSpec,
    Residual, Shape, Standardize, build, load_state_dict, state_dict,
};

fn x() -> DMatrix<f64> {
    DMatrix::from_fn(3, 4, |i, j| (i as f64) * 0.5 - (j as f64) * 0.25 + 0.1)
}

fn block(seed: u64) -> Residual<f64> {
    Residual::with_projection(
        Dense::new(3, 3, Init::XavierUniform { seed }).unwrap(),
        Dense::new(3, 3, Init::XavierUniform { seed: seed + 1 }).unwrap(),
    )
}

fn grads(layer: &dyn Layer<f64>) -> Vec<(String, DMatrix<f64>)> {
    let mut all = Vec::new();
    layer.visit_params(&mut |path, p| all.push((path.to_string(), p.grad().clone())));
    all
}

#[test]
fn a_residual_block_passes_every_call_to_its_body_and_projection() {
    let (mut a, mut b) = (block(1), block(1));
    assert_eq!(a.name(), "Residual");
    assert!(a.projection().is_some());
    assert!(
        Residual::new(Dense::<f64>::new(3, 3, Init::Zeros).unwrap())
            .projection()
            .is_none()
    );
    let g = x().map(|v| 1.0 - v);
    a.forward(&x()).unwrap();
    b.forward(&x()).unwrap();
    a.backward(&g).unwrap();
    b.backward_params(&g).unwrap();
    // backward_params adds what backward adds, to the body's and the projection's parameters
    let (ga, gb) = (grads(&a), grads(&b));
    assert_eq!(ga, gb);
    // (the paths, body.… then shortcut.…, are the residual module's own unit test)
    assert!(ga.iter().all(|(_, g)| g.iter().any(|&v| v != 0.0)));
    b.zero_grad();
    assert!(grads(&b).iter().all(|(_, g)| g.iter().all(|&v| v == 0.0)));
}

#[test]
fn a_residual_blocks_buffers_and_seeds_reach_its_children() {
    let mut norm = Residual::new(BatchNorm::<f64>::new_1d(BatchNormConfig::new(3)).unwrap());
    let mut seen = Vec::new();
    norm.visit_buffers(&mut |path, b| seen.push((path.to_string(), b.len())));
    assert_eq!(seen[0], ("body.running_mean".to_string(), 3));
    norm.visit_buffers_mut(&mut |path, b| {
        if path == "body.running_mean" {
            b.as_mut_slice().fill(2.0);
        }
    });
    let mut mean = 0.0;
    norm.visit_buffers(&mut |path, b| {
        if path == "body.running_mean" {
            mean = b.value()[1];
        }
    });
    assert_eq!(mean, 2.0);
    // a dropout body draws the masks of the seed given to the block
    let masked = |seed| {
        let mut d = Residual::new(Dropout::<f64>::new(0.5).unwrap());
        d.reseed(seed);
        d.forward(&DMatrix::from_element(20, 20, 1.0)).unwrap()
    };
    assert_eq!(masked(11), masked(11));
    assert_ne!(masked(11), masked(12));
}

#[test]
fn a_residual_spec_takes_a_body_and_at_most_a_projection() {
    let dense = LayerSpec::new(
        "Dense",
        &retroprop_layers::DenseConfig { d_in: 2, d_out: 2 },
    );
    let three = LayerSpec::unit("Residual").with_children(vec![dense.clone(); 3]);
    let err = build::<f64>(&three).map(drop).unwrap_err();
    assert!(matches!(err, LayerError::Config { .. }), "{err}");
    assert!(err.to_string().contains("got 3 children"), "{err}");
    let two = LayerSpec::unit("Residual").with_children(vec![dense; 2]);
    assert!(build::<f64>(&two).is_ok());
}

#[test]
fn standardize_keeps_its_mean_and_std_as_buffers() {
    let mut s = Standardize::<f64>::new(0.25, 2.0).unwrap();
    assert_eq!((s.mean(), s.std()), (0.25, 2.0));
    let mut buffers = Vec::new();
    s.visit_buffers(&mut |path, b| buffers.push((path.to_string(), b.value()[0])));
    assert_eq!(
        buffers,
        [("mean".to_string(), 0.25), ("std".to_string(), 2.0)]
    );
    s.visit_buffers_mut(&mut |path, b| {
        b.as_mut_slice()[0] = if path == "mean" { 1.0 } else { 4.0 }
    });
    assert_eq!((s.mean(), s.std()), (1.0, 4.0));
}

#[test]
fn a_state_dict_missing_one_parameter_is_refused() {
    let mut dense = Dense::<f64>::new(3, 2, Init::Zeros).unwrap();
    let mut dict = state_dict(&dense);
    dict.remove("bias");
    let err = load_state_dict(&mut dense, &dict).unwrap_err();
    assert!(
        matches!(&err, LayerError::StateDict { missing, unexpected, shapes }
            if missing == &["bias".to_string()] && unexpected.is_empty() && shapes.is_empty()),
        "{err}"
    );
}

#[test]
fn shapes_count_their_values_without_overflow() {
    assert_eq!(Shape::image(3, 4, 5).checked_len(), Some(60));
    assert_eq!(Shape::Flat(7).checked_len(), Some(7));
    assert_eq!(Shape::image(1 << 40, 1 << 30, 1).checked_len(), None);
    assert!(!Shape::image(3, 4, 5).is_empty());
    assert!(Shape::image(3, 0, 5).is_empty());
}

#[test]
fn sizes_past_the_limit_are_refused_before_any_allocation() {
    let too_large =
        |r: Result<(usize, usize), LayerError>| matches!(r, Err(LayerError::TooLarge { .. }));
    // a dense layer of 2¹⁷ × 2¹⁶ weights: 2³³ values
    assert!(matches!(
        Dense::<f32>::new(1 << 17, 1 << 16, Init::Zeros),
        Err(LayerError::TooLarge { .. })
    ));
    // a 1×1 image padded by 25 000: 50 001² ≈ 2.5·10⁹ outputs (under 2³²), but its padded,
    // stride-phased layout holds 2 × 50 001² values; padded by 20 000, 2 × 40 001² fit
    let padded = |p| Conv2dConfig::new((1, 1, 1), 1, 1).padding(p).output_size();
    assert!(too_large(padded(25_000)));
    assert_eq!(padded(20_000).unwrap(), (40_001, 40_001));
    // a 2×2 image padded by 20 000: its layout, 2 × 40 004², fits (a layout counted as
    // 2p·H instead of 2p + H would not)
    let two = Conv2dConfig::new((1, 2, 2), 1, 1)
        .padding(20_000)
        .output_size();
    assert_eq!(two.unwrap(), (40_002, 40_002));
    // one output (a stride past the image), but the input gradient's padded δ of 3 channels
    // holds 3 × 40 001² ≈ 4.8·10⁹ values; 2 channels fit
    let strided = |c| {
        Conv2dConfig::new((1, 1, 1), c, 1)
            .padding(20_000)
            .stride(40_001)
            .output_size()
    };
    assert!(too_large(strided(3)));
    assert_eq!(strided(2).unwrap(), (1, 1));
    // the padded δ is as wide as the kernel's dilated span on each side: 68 001² values here
    let dilated = |d| {
        Conv2dConfig::new((1, 34_001, 34_001), 1, 3)
            .dilation(d)
            .output_size()
    };
    assert!(too_large(dilated(17_000)));
    assert_eq!(dilated(15_000).unwrap(), (4_001, 4_001));
}
