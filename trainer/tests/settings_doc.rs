//! docs/config.md's table of settings is the one the code declares
//! (`mclrec_trainer::settings::markdown_table`).

const BEGIN: &str = "<!-- settings table: begin -->\n";
const END: &str = "<!-- settings table: end -->";

#[test]
fn the_docs_list_every_setting_with_the_codes_default() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/config.md");
    let doc = std::fs::read_to_string(path).expect("docs/config.md");
    let (a, b) = (
        doc.find(BEGIN).expect("begin marker") + BEGIN.len(),
        doc.find(END).expect("end marker"),
    );
    let table = mclrec_trainer::settings::markdown_table();
    if std::env::var_os("MCLREC_BLESS").is_some() {
        std::fs::write(path, format!("{}{table}{}", &doc[..a], &doc[b..])).expect("write");
        return;
    }
    assert_eq!(
        &doc[a..b],
        table,
        "docs/config.md differs from the settings the code declares; \
         MCLREC_BLESS=1 cargo test -p mclrec-trainer --test settings_doc rewrites it"
    );
    for s in mclrec_trainer::SETTINGS {
        assert!(
            doc.contains(&format!("`{}`", s.key)),
            "{} undocumented",
            s.key
        );
    }
}
