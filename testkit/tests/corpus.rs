//! A test of the shared corpus cannot pass without it: a missing folder or one that does not hold
//! the templates it should fails, naming the path.

use slipway_testkit::*;

#[test]
fn both_corpus_folders_hold_what_they_should() {
    assert_eq!(shared_corpus(OPENSHIFT_TEMPLATES).len(), 62);
    assert_eq!(shared_corpus(OPENSHIFT_TEMPLATES_EXTRA).len(), 60);
}

#[test]
#[should_panic(expected = "shared/testdata/no-such-corpus is missing")]
fn a_missing_corpus_fails_naming_its_path() {
    shared_corpus(("no-such-corpus", 1));
}

#[test]
#[should_panic(expected = "openshift-templates has 62 templates, not the 63 it holds")]
fn a_corpus_of_another_size_fails() {
    shared_corpus(("openshift-templates", 63));
}

#[test]
#[should_panic(expected = "shared/testdata/openshift-templates/none.json is missing")]
fn a_missing_file_fails_naming_its_path() {
    shared_file("openshift-templates/none.json");
}
