//! Write `mathison-host` plugins in Rust.
//!
//! A plugin is a WebAssembly component for the `mathison:plugin` world (`wit/world.wit`). This
//! crate holds the one copy of its bindings, the [`Plugin`] trait that authors implement with
//! typed configuration and typed `k8s-openapi` objects, and [`export_plugin!`], which turns such
//! a type into the component's exports: the configuration's JSON Schema, its defaults and its
//! decoding are derived from the [`Plugin::Config`] type, so they cannot drift apart.
//!
//! ```
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
//! use mathison_plugin_sdk::{Context, KindRef, Output, Plugin, RenderError};
//!
//! /// The configuration; doc comments become the schema's descriptions.
//! #[derive(Debug, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
//! #[serde(default, deny_unknown_fields, rename_all = "camelCase")]
//! struct Config {
//!     /// The greeting to store.
//!     greeting: String,
//! }
//!
//! #[derive(Debug)]
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     type Config = Config;
//!     const NAME: &'static str = "hello";
//!     const VERSION: &'static str = "0.1.0";
//!     const DESCRIPTION: &'static str = "Stores a greeting in a ConfigMap.";
//!
//!     fn kinds() -> Vec<KindRef> {
//!         vec![KindRef::of::<ConfigMap>()]
//!     }
//!
//!     fn render(ctx: &Context, config: Config) -> Result<Output, RenderError> {
//!         let mut out = Output::default();
//!         out.push(ConfigMap {
//!             metadata: ObjectMeta {
//!                 name: Some("hello".into()),
//!                 namespace: Some(ctx.namespace.clone()),
//!                 ..Default::default()
//!             },
//!             data: Some([("greeting".to_owned(), config.greeting)].into()),
//!             ..Default::default()
//!         });
//!         Ok(out)
//!     }
//! }
//!
//! // In the plugin crate (crate-type = ["cdylib", "rlib"]):
//! mathison_plugin_sdk::export_plugin!(Hello);
//!
//! // And natively, in its tests:
//! let out = mathison_plugin_sdk::testing::render::<Hello>(
//!     &mathison_plugin_sdk::testing::context("demo"),
//!     serde_json::json!({ "greeting": "hi" }),
//! )
//! .expect("renders");
//! let cm: ConfigMap = mathison_plugin_sdk::testing::object(&out, "hello");
//! assert_eq!(cm.data.expect("data")["greeting"], "hi");
//! ```

pub mod config;
pub mod k8s;
pub mod labels;
pub mod log;
pub mod metrics;
mod output;
mod schema;
pub mod testing;
pub mod validate;

/// The bindings generated from `wit/world.wit`; plugin code rarely needs them directly.
// The generated glue converts between the canonical ABI and Rust with raw pointers, which needs
// `unsafe`; it is confined to this module and the export in `export_plugin!`. The other lints
// flag the generator's style (fully qualified paths, one argument per ABI word), not ours.
#[allow(unsafe_code, unused_qualifications, clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "mathison_plugin_sdk::bindings",
    });
}

pub use bindings::mathison::plugin::types::{
    ConnectionValue, FieldError, KindRef, Object, PluginInfo, RenderContext as Context, RenderError,
};
/// Kubernetes quantities, parsed and compared exactly (the host uses the same parser).
pub use mathison_quantity as quantity;
pub use output::Output;
pub use quantity::Quantity;

/// What a plugin author implements; [`export_plugin!`] does the rest.
pub trait Plugin {
    /// The configuration. Its `Default` is the default configuration, its schemars schema the
    /// configuration schema: give every field a doc comment, and use
    /// `#[serde(default, deny_unknown_fields)]` so that unknown keys are refused.
    type Config: serde::de::DeserializeOwned + serde::Serialize + schemars::JsonSchema + Default;
    /// Short DNS-1123 label; names the plugin's section in values files.
    const NAME: &'static str;
    /// The plugin's own semantic version.
    const VERSION: &'static str;
    /// One sentence for people.
    const DESCRIPTION: &'static str;

    /// Every apiVersion/kind that `render` may emit; the host refuses any other.
    fn kinds() -> Vec<KindRef>;

    /// Renders the objects for a configuration that decoded into `Config`. Checks that the
    /// schema cannot express (a limit below its request) return [`RenderError::InvalidConfig`].
    fn render(ctx: &Context, config: Self::Config) -> Result<Output, RenderError>;
}

impl KindRef {
    /// The apiVersion and kind of a `k8s-openapi` type.
    pub fn of<K: k8s_openapi::Resource>() -> Self {
        Self {
            api_version: K::API_VERSION.to_owned(),
            kind: K::KIND.to_owned(),
        }
    }
}

impl FieldError {
    /// A problem with the field at the dotted `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Implements the component's exports for a [`Plugin`]: `export_plugin!(MyPlugin);` once, at the
/// root of the plugin crate.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        // The canonical-ABI exports that wit-bindgen emits are `unsafe extern "C"` functions.
        #[allow(unsafe_code)]
        const _: () = {
            struct MathisonPluginExports;

            impl $crate::bindings::Guest for MathisonPluginExports {
                fn info() -> $crate::PluginInfo {
                    $crate::__private::info::<$plugin>()
                }

                fn render(
                    context: $crate::Context,
                    config: ::std::string::String,
                ) -> ::std::result::Result<$crate::bindings::RenderOutput, $crate::RenderError>
                {
                    $crate::__private::render::<$plugin>(&context, &config)
                        .and_then($crate::Output::into_wit)
                }
            }

            $crate::bindings::__export_world!(
                MathisonPluginExports with_types_in $crate::bindings
            );
        };
    };
}

/// What [`export_plugin!`] and [`testing`] share; not a stable API.
#[doc(hidden)]
pub mod __private {
    use super::{Context, FieldError, Output, Plugin, PluginInfo, RenderError};

    pub fn info<P: Plugin>() -> PluginInfo {
        PluginInfo {
            name: P::NAME.to_owned(),
            version: P::VERSION.to_owned(),
            description: P::DESCRIPTION.to_owned(),
            config_schema: crate::schema::config_schema::<P::Config>().to_string(),
            default_config: crate::schema::default_config::<P::Config>().to_string(),
            kinds: P::kinds(),
        }
    }

    pub fn render<P: Plugin>(ctx: &Context, config: &str) -> Result<Output, RenderError> {
        // Through `Value` so that messages carry no line and column, only the field path.
        let value: serde_json::Value = serde_json::from_str(config)
            .map_err(|e| RenderError::Internal(format!("the host sent invalid JSON: {e}")))?;
        let config: P::Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = match e.path().to_string() {
                root if root == "." => String::new(),
                path => path,
            };
            RenderError::InvalidConfig(vec![FieldError::new(path, e.into_inner().to_string())])
        })?;
        P::render(ctx, config)
    }
}
