//! Unit tests of the Timeloop readers' name helpers.

use super::ert::ert_component;
use super::yaml::parse_instance_name;

#[test]
fn instance_names() {
    assert_eq!(
        parse_instance_name("PE[0..167]").unwrap(),
        ("PE".into(), 168)
    );
    assert_eq!(
        parse_instance_name("shared_glb[1..1]").unwrap(),
        ("shared_glb".into(), 1)
    );
    assert_eq!(parse_instance_name("Buffer").unwrap(), ("Buffer".into(), 1));
    assert!(parse_instance_name("PE[3..1]").is_err());
    assert!(parse_instance_name("PE[0..x]").is_err());
    assert_eq!(
        ert_component("system_top_level.shared_glb[1..1]"),
        "shared_glb"
    );
    assert_eq!(ert_component("system.PE[0..167].mac"), "mac");
    assert_eq!(ert_component("PE.Buffer"), "Buffer");
}
