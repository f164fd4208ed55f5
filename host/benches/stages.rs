//! The cost of each in-process stage of a render of the official plugins: loading (BLAKE3 of the
//! plugin, checksum and mapping of the cached machine code, `info` from the cache), the
//! configuration check against the plugin's schema, `info` and `render` calls (fresh sandbox
//! each, instantiation included), decode, merge and order, and YAML output. Run with
//! `cargo bench -p mathison-host --bench stages`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use mathison_host::merge::{self, MergeSettings, PluginObjects};
use mathison_host::model::contract::RenderContext;
use mathison_host::output::{self, Format};
use mathison_host::runtime::{Limits, Runtime};
use mathison_host::schema::Schema;
use mathison_host::values::Values;
use mathison_host::{decode, order};
use mathison_test_artifacts::{POSTGRES, REDIS};

fn context() -> RenderContext {
    RenderContext {
        namespace: "mathison-system".into(),
        instance: "mathison".into(),
        host_version: "bench".into(),
    }
}

fn stages(c: &mut Criterion) {
    let cache = tempfile::tempdir().expect("temp dir");
    let runtime = Runtime::new(Limits::default(), Some(cache.path().to_owned()), false);
    let plugin = runtime
        .load(Path::new(POSTGRES))
        .expect("load (compiles into the cache)");
    let info = runtime.info(&plugin).expect("info").value;
    let config = info.default_config.clone();
    let rendered = runtime
        .render(&plugin, &context(), &config)
        .expect("render")
        .value;

    c.bench_function("load postgres (cache hit)", |b| {
        b.iter(|| runtime.load(black_box(Path::new(POSTGRES))).expect("load"));
    });
    c.bench_function("check postgres's configuration against its schema", |b| {
        b.iter(|| {
            let schema = Schema::parse(black_box(&info.config_schema)).expect("bounded schema");
            Values::default()
                .config_for(
                    &info.name,
                    "postgres.wasm",
                    &info.default_config,
                    &schema,
                    Limits::default().timeout,
                )
                .expect("valid")
        });
    });
    c.bench_function("call info", |b| {
        b.iter(|| runtime.info(&plugin).expect("info"))
    });
    c.bench_function("call render", |b| {
        b.iter(|| {
            runtime
                .render(&plugin, &context(), black_box(&config))
                .expect("render")
        });
    });
    c.bench_function("decode postgres objects", |b| {
        b.iter(|| {
            rendered
                .objects
                .iter()
                .map(|envelope| {
                    decode::decode("postgres.wasm", black_box(envelope)).expect("decode")
                })
                .collect::<Vec<_>>()
        });
    });

    let redis = runtime.load(Path::new(REDIS)).expect("load redis");
    let redis_info = runtime.info(&redis).expect("info").value;
    let redis_output = runtime
        .render(&redis, &context(), &redis_info.default_config)
        .expect("render redis")
        .value;
    let contributions: Vec<PluginObjects> = [(&info, &rendered), (&redis_info, &redis_output)]
        .into_iter()
        .map(|(info, output)| PluginObjects {
            name: info.name.clone(),
            source: format!("{}.wasm", info.name),
            version: info.version.clone(),
            objects: output
                .objects
                .iter()
                .map(|e| decode::decode(&info.name, e).expect("decode"))
                .collect(),
            connection_values: output.connection_values.clone(),
            provenance: None,
        })
        .collect();
    let settings = MergeSettings {
        namespace: "mathison-system".into(),
        instance: "mathison".into(),
        ..MergeSettings::default()
    };
    c.bench_function("merge and order postgres + redis", |b| {
        b.iter(|| {
            let mut merged =
                merge::merge(black_box(contributions.clone()), &settings).expect("merge");
            order::sort(&mut merged.objects);
            merged
        });
    });
    let mut merged = merge::merge(contributions, &settings).expect("merge");
    order::sort(&mut merged.objects);
    let objects: Vec<_> = merged.objects.iter().collect();
    c.bench_function("write YAML postgres + redis", |b| {
        b.iter(|| output::to_string(black_box(&objects), Format::Yaml).expect("yaml"));
    });
}

criterion_group!(benches, stages);
criterion_main!(benches);
