use super::*;

fn parse(text: &str) -> Result<Project, ProjectError> {
    Project::parse(Path::new("proj/mathison.yaml"), text)
}

const HEADER: &str = "apiVersion: mathison.dev/v1alpha1\nkind: Project\n";

#[test]
fn a_project_resolves_its_paths_against_its_own_directory() {
    let project = parse(&format!(
        "{HEADER}namespace: data\nplugins:\n  - name: postgres\n    source: oci://127.0.0.1:5000/pg:1\n    \
         values:\n      persistence:\n        size: 20Gi\n    secretInputs:\n      \
         postgres-password: file:pw\n  - name: redis\n    source: plugins/redis.wasm\n  - name: minio\n\
         valuesFiles: [prod.yaml]\n"
    ))
    .unwrap();
    assert_eq!(
        project.sources,
        [
            "oci://127.0.0.1:5000/pg:1",
            "proj/plugins/redis.wasm",
            "minio"
        ]
    );
    assert_eq!(project.values_files(), [PathBuf::from("proj/prod.yaml")]);
    assert_eq!(
        project.secret_inputs(),
        ["postgres.postgres-password=file:proj/pw"]
    );
    let [section] = project.sections.as_slice() else {
        panic!("one section: {:?}", project.sections);
    };
    assert_eq!(section.plugin, "postgres");
    assert_eq!(
        section
            .origins
            .get("/persistence/size")
            .map(ToString::to_string),
        Some("proj/mathison.yaml:9:9".to_string())
    );
}

#[test]
fn mistakes_are_reported_at_their_line_and_column() {
    for (text, needle) in [
        (
            format!("{HEADER}plugins:\n  - name: redis\n    valus: {{}}\n"),
            "proj/mathison.yaml:5:5: plugins[0].valus: unknown field `valus`",
        ),
        (
            format!("{HEADER}namespace: [a]\nplugins: []\n"),
            "proj/mathison.yaml:3:",
        ),
        (
            format!("{HEADER}plugins:\n  - name: redis\n  - name: redis\n"),
            "proj/mathison.yaml:5:5: plugins[1]: plugin \"redis\" is listed twice",
        ),
        (
            format!(
                "{HEADER}plugins:\n  - name: a\n    source: r.wasm\n  - name: b\n    source: r.wasm\n"
            ),
            "proj/mathison.yaml:7:5: plugins[1]: source \"proj/r.wasm\" is listed twice",
        ),
        (
            format!("{HEADER}plugins:\n  - name: a\n    source: oci://pg:1\n"),
            "malformed plugin reference",
        ),
        (
            "apiVersion: v1\nkind: Project\nplugins: []\n".to_string(),
            "proj/mathison.yaml:1:1: expected apiVersion mathison.dev/v1alpha1",
        ),
        (format!("{HEADER}plugins: [\n"), "proj/mathison.yaml:"),
        (
            String::new(),
            "proj/mathison.yaml:1:1: the project file is empty",
        ),
        (
            format!("{HEADER}plugins: []\nuserOwned:\n  - Secret/mine\n  - nothing\n"),
            "proj/mathison.yaml:6:5: userOwned[1]: \"nothing\" is not KIND/NAME",
        ),
    ] {
        let error = parse(&text).unwrap_err().to_string();
        assert!(error.contains(needle), "{text}\n→ {error}");
    }
}

#[test]
fn the_schema_describes_the_file() {
    let schema = Project::json_schema();
    assert_eq!(schema["additionalProperties"], false);
    assert!(schema["properties"]["plugins"].is_object());
    assert_eq!(
        schema["required"],
        serde_json::json!(["apiVersion", "kind", "plugins"])
    );
}
