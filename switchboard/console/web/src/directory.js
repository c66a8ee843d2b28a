// The contact network as a lazy Element Plus tree: organisations under their parents, the people of an organisation
// loaded when it is opened. Dispatch (to call someone) and consultations (to invite sites) both browse it.
import { api } from "./api.js";

/** A person's node; `contact` is the directory's record. */
export const personNode = (c) => ({
  key: c.id, kind: "person", label: c.title ? `${c.name}（${c.title}）` : c.name, leaf: true, contact: c,
});

/** The `load` of an el-tree (lazy): one per tree, it keeps the organisations it read. */
export function directoryTree() {
  let orgs = [];
  const children = (parent) => orgs
    .filter((o) => o.parent_code === parent)
    .map((o) => ({ key: o.code, kind: "org", code: o.code, people: o.people, label: o.name, leaf: false }));
  return async function load(node, resolve) {
    if (node.level === 0) {
      orgs = await api("/api/v1/directory/organisations");
      return resolve(children(null));
    }
    const data = node.data;
    if (data.kind !== "org") return resolve([]);
    const people = data.people
      ? (await api(`/api/v1/directory/contacts?org=${encodeURIComponent(data.code)}&limit=500`)).map(personNode)
      : [];
    resolve([...children(data.code), ...people]);
  };
}
