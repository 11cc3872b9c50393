//! `ParamStates`, the per-parameter state every optimizer saves and restores: what `import`
//! accepts and refuses (another optimizer, slots out of order, a parameter twice, state for a
//! state-less optimizer), and `reset`.

use retroprop_optim::{OptimError, OptimizerState, ParamStates, SlotState};

const ADAM_SLOTS: &[&str] = &["exp_avg", "exp_avg_sq"];

fn slot(path: &str, slot: &str, v: f64) -> SlotState<f64> {
    SlotState {
        path: path.to_string(),
        slot: slot.to_string(),
        values: vec![v, 2.0 * v],
    }
}

fn saved(slot_names: &[&str], slots: Vec<SlotState<f64>>) -> OptimizerState<f64> {
    OptimizerState {
        optimizer: "Adam".to_string(),
        slot_names: slot_names.iter().map(|s| s.to_string()).collect(),
        steps: 7,
        slots,
    }
}

fn refused(state: &OptimizerState<f64>, slots: &[&str]) -> OptimError {
    OptimError::StateKind {
        expected: "Adam".to_string(),
        expected_slots: slots.iter().map(|s| s.to_string()).collect(),
        found: state.optimizer.clone(),
        found_slots: state.slot_names.clone(),
    }
}

#[test]
fn a_whole_state_in_order_is_imported_and_exported_back() {
    let mut states = ParamStates::<f64>::new(ADAM_SLOTS);
    assert_eq!(states.slot_names(), ADAM_SLOTS);
    let state = saved(
        ADAM_SLOTS,
        vec![
            slot("0.bias", "exp_avg", 1.0),
            slot("0.bias", "exp_avg_sq", 2.0),
            slot("0.weight", "exp_avg", 3.0),
            slot("0.weight", "exp_avg_sq", 4.0),
        ],
    );
    states.import("Adam", state.clone()).unwrap();
    assert_eq!(states.steps(), 7);
    assert_eq!(states.export("Adam"), state);
    // reset forgets the tensors and the steps
    states.reset();
    assert_eq!(states.steps(), 0);
    assert_eq!(
        states.export("Adam"),
        OptimizerState {
            steps: 0,
            slots: vec![],
            ..state
        }
    );
}

#[test]
fn slots_out_of_order_or_a_parameter_twice_are_refused() {
    let out_of_order = saved(
        ADAM_SLOTS,
        vec![
            slot("0.weight", "exp_avg_sq", 1.0),
            slot("0.weight", "exp_avg", 2.0),
        ],
    );
    let split_across_paths = saved(
        ADAM_SLOTS,
        vec![
            slot("0.weight", "exp_avg", 1.0),
            slot("0.bias", "exp_avg_sq", 2.0),
        ],
    );
    let twice = saved(
        ADAM_SLOTS,
        vec![
            slot("0.weight", "exp_avg", 1.0),
            slot("0.weight", "exp_avg_sq", 2.0),
            slot("0.weight", "exp_avg", 3.0),
            slot("0.weight", "exp_avg_sq", 4.0),
        ],
    );
    let incomplete = saved(ADAM_SLOTS, vec![slot("0.weight", "exp_avg", 1.0)]);
    for state in [out_of_order, split_across_paths, twice, incomplete] {
        let mut states = ParamStates::<f64>::new(ADAM_SLOTS);
        assert_eq!(
            states.import("Adam", state.clone()),
            Err(refused(&state, ADAM_SLOTS)),
            "{state:?}"
        );
        assert_eq!(states.steps(), 0, "a refused state changes nothing");
    }
}

#[test]
fn an_optimizer_without_state_takes_an_empty_state_and_refuses_any_other() {
    let mut states = ParamStates::<f64>::new(&[]);
    states.import("Adam", saved(&[], vec![])).unwrap();
    assert_eq!(states.steps(), 7);
    let with_slots = saved(&[], vec![slot("0.weight", "exp_avg", 1.0)]);
    assert_eq!(
        states.import("Adam", with_slots.clone()),
        Err(refused(&with_slots, &[]))
    );
}
