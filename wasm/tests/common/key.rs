use kompass_wasm::object_key;
use wasm_bindgen_test::wasm_bindgen_test;

use super::js_error;

#[wasm_bindgen_test]
fn user_and_global_keys_follow_the_layout() {
    assert_eq!(
        object_key(Some("u1".into()), "routes", "ride.json").unwrap(),
        "users/u1/routes/ride.json"
    );
    assert_eq!(object_key(None, "models", "m.bin").unwrap(), "models/m.bin");
}

#[wasm_bindgen_test]
fn an_escaping_name_is_a_key_error_with_its_reason() {
    let (name, message) = js_error(object_key(Some("u1".into()), "routes", "../x").unwrap_err());
    assert_eq!(name, "KeyError");
    assert!(message.contains("file name") && message.contains("separator"), "{message}");
}

#[wasm_bindgen_test]
fn fitness_data_needs_a_user() {
    let (name, message) = js_error(object_key(None, "fitness", "f.json").unwrap_err());
    assert_eq!(name, "KeyError");
    assert!(message.contains("belongs to a user"), "{message}");
}
