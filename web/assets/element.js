// The inspector's DOM helper: one element with its text (set with
// textContent only) and class.

export function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}
