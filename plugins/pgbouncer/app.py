"""The WIT glue: exports `info` and `render` of the mathison:plugin world around `pgbouncer`.

componentize-py generates `wit_world` from ../../wit at build time (see `build`).
"""
import json
import traceback

import wit_world
from componentize_py_types import Err
from wit_world.imports import host, types

import pgbouncer


class WitWorld(wit_world.WitWorld):
    def info(self) -> types.PluginInfo:
        return types.PluginInfo(
            name=pgbouncer.NAME,
            version=pgbouncer.VERSION,
            description=pgbouncer.DESCRIPTION,
            config_schema=json.dumps(pgbouncer.SCHEMA),
            default_config=json.dumps(pgbouncer.DEFAULT_CONFIG),
            kinds=[types.KindRef(api_version, kind) for api_version, kind in pgbouncer.KINDS],
        )

    def render(self, context: types.RenderContext, config: str) -> types.RenderOutput:
        try:
            objects, connections = pgbouncer.render(context.namespace, context.instance, json.loads(config))
        except pgbouncer.InvalidConfig as error:
            raise Err(types.RenderError_InvalidConfig(
                [types.FieldError(path, message) for path, message in error.problems]))
        except Exception:  # noqa: BLE001 - the contract says: an error result, never a trap
            raise Err(types.RenderError_Internal(traceback.format_exc(limit=3)))
        host.log(types.LogLevel.DEBUG, f"pgbouncer: {len(objects)} objects for {context.namespace}")
        return types.RenderOutput(
            objects=[types.Object(o["apiVersion"], o["kind"], o["metadata"]["name"], o["metadata"].get("namespace"),
                                  json.dumps(o)) for o in objects],
            connection_values=[types.ConnectionValue(key, value, secret) for key, value, secret in connections],
        )
