fn main() {
    let path = std::env::args().nth(1).expect("path");
    match warren::config::load(std::path::Path::new(&path)) {
        Ok(l) => { for w in &l.warnings { println!("warning: {w}"); } println!("{:#?}", l.config); }
        Err(e) => println!("ERROR:\n{e}"),
    }
}
