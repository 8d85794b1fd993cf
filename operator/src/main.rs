//! `hatchet-operator`: the controller binary.
fn main() {
    print!("{}", hatchet_operator::crd::crd_yaml().unwrap());
}
