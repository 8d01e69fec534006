//! The /predict function: loads models and data once, then answers API
//! Gateway proxy events.

fn main() {
    todo!("lambda helper")
}
