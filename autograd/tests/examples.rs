//! Every example of the crate runs to its end (each asserts what it shows).

#[path = "../examples/01_scalar.rs"]
mod ex01_scalar;
#[path = "../examples/02_tape.rs"]
mod ex02_tape;
#[path = "../examples/03_gradcheck.rs"]
mod ex03_gradcheck;
#[path = "../examples/04_mlp.rs"]
mod ex04_mlp;
#[path = "../examples/05_optimisers.rs"]
mod ex05_optimisers;
#[path = "../examples/06_transformer.rs"]
mod ex06_transformer;

#[test]
fn every_example_runs() {
    ex01_scalar::main();
    ex02_tape::main();
    ex03_gradcheck::main();
    ex04_mlp::main();
    ex05_optimisers::main();
    ex06_transformer::main();
}
