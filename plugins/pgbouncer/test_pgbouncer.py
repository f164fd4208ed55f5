"""Native tests of the plugin's logic (no wasm): `python3 -m unittest` in this folder."""
import copy
import unittest

import pgbouncer


def render(**overrides):
    config = copy.deepcopy(pgbouncer.DEFAULT_CONFIG)
    for key, value in overrides.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) else value
    objects, connections = pgbouncer.render("ns", "mathison", config)
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}, connections


class RenderTest(unittest.TestCase):
    def test_default_objects(self):
        objects, _ = render()
        self.assertEqual(sorted(objects), [("ConfigMap", "pgbouncer-config"), ("Deployment", "pgbouncer"),
                                           ("NetworkPolicy", "pgbouncer"), ("Service", "pgbouncer")])
        self.assertTrue(all(o["metadata"]["namespace"] == "ns" for o in objects.values()))
        self.assertEqual(sorted(kind for _, kind in pgbouncer.KINDS), sorted(kind for kind, _ in objects))

    def test_ini_points_at_the_postgres_service(self):
        objects, _ = render(pool={"mode": "session"})
        ini = objects[("ConfigMap", "pgbouncer-config")]["data"]["pgbouncer.ini"]
        self.assertIn("mathison = host=postgres.ns.svc.cluster.local port=5432 dbname=mathison\n", ini)
        self.assertIn("pool_mode = session\n", ini)
        self.assertIn("listen_port = 6432\n", ini)

    def test_pods_pass_postgres_network_policy_and_are_hardened(self):
        objects, _ = render()
        pod = objects[("Deployment", "pgbouncer")]["spec"]["template"]
        self.assertEqual(pod["metadata"]["labels"]["mathison.dev/postgres-client"], "true")
        self.assertEqual(pod["spec"]["securityContext"]["runAsUser"], pgbouncer.UID)
        container = pod["spec"]["containers"][0]
        self.assertTrue(container["securityContext"]["readOnlyRootFilesystem"])
        self.assertEqual(container["securityContext"]["capabilities"], {"drop": ["ALL"]})

    def test_connection_url_needs_the_password_input(self):
        _, connections = render()
        url = [c for c in connections if c[0] == "DATABASE_POOL_URL"]
        self.assertEqual(url, [("DATABASE_POOL_URL", "postgresql://mathison:{secret}@pgbouncer.ns.svc.cluster.local:6432/mathison",
                                "postgres-password")])

    def test_limit_below_request_is_refused_with_its_path(self):
        resources = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "500m", "memory": "1024Mi"}}
        with self.assertRaises(pgbouncer.InvalidConfig) as raised:
            render(resources=resources)
        self.assertEqual([path for path, _ in raised.exception.problems], ["resources.limits.cpu"])

    def test_quantities_compare_by_value(self):
        self.assertEqual(pgbouncer.quantity("1Gi"), pgbouncer.quantity("1024Mi"))
        self.assertEqual(pgbouncer.quantity("1e3"), pgbouncer.quantity("1k"))
        self.assertLess(pgbouncer.quantity("999m"), pgbouncer.quantity("1"))


class SchemaTest(unittest.TestCase):
    def test_every_property_has_a_description_and_a_default(self):
        def walk(schema, pointer):
            if "properties" in schema:
                self.assertIs(schema.get("additionalProperties"), False, f"{pointer} accepts unknown properties")
            for key, prop in schema.get("properties", {}).items():
                self.assertIn("description", prop, f"{pointer}/{key}")
                self.assertIn("default", prop, f"{pointer}/{key}")
                walk(prop, f"{pointer}/{key}")
        walk(pgbouncer.SCHEMA, "")

    def test_defaults_come_from_the_schema(self):
        self.assertEqual(pgbouncer.DEFAULT_CONFIG["pool"]["mode"],
                         pgbouncer.SCHEMA["properties"]["pool"]["properties"]["mode"]["default"])


if __name__ == "__main__":
    unittest.main()
