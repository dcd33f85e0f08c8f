fn main() {
    println!("chids");
}
