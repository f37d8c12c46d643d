// A model's markdown as safe HTML: marked renders it, raw HTML in it is shown
// as text (never parsed), and DOMPurify cleans the result all the same, so
// nothing a model writes can run. The page's CSP (no inline script, images
// only from this origin) is the third wall.

import { Marked } from '/assets/vendor/marked.js';
import DOMPurify from '/assets/vendor/purify.js';

const escapeHtml = (text) => text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

const marked = new Marked({
  gfm: true,
  breaks: true,
  renderer: {
    // `<img onerror=…>`, `<script>`…: shown as the text the model wrote.
    html({ text }) {
      return escapeHtml(text);
    },
  },
});

// Links open elsewhere, without handing this page to them.
DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer nofollow');
  }
});

const PURIFY = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'object', 'embed'],
  FORBID_ATTR: ['style'],
};

/** Markdown text as sanitised HTML. */
export function markdownToHtml(text) {
  return DOMPurify.sanitize(marked.parse(text).trim(), PURIFY);
}

/** Renders `text` into `element`, each fenced code block with a copy button. */
export function renderMarkdown(element, text) {
  element.innerHTML = markdownToHtml(text);
  for (const pre of element.querySelectorAll('pre')) {
    const code = pre.querySelector('code');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'copy';
    button.textContent = 'Copy';
    button.setAttribute('aria-label', 'Copy the code');
    button.addEventListener('click', () => {
      copyText(code?.textContent ?? pre.textContent ?? '').then(
        () => flash(button, 'Copied'),
        () => flash(button, 'Copy failed'),
      );
    });
    const wrapper = document.createElement('div');
    wrapper.className = 'code-block';
    pre.replaceWith(wrapper);
    wrapper.append(button, pre);
  }
}

async function copyText(text) {
  if (navigator.clipboard?.writeText) return navigator.clipboard.writeText(text);
  // Without the async clipboard (an insecure origin): a hidden selection.
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.style.position = 'fixed';
  area.style.opacity = '0';
  document.body.append(area);
  area.select();
  const copied = document.execCommand('copy');
  area.remove();
  if (!copied) throw new Error('copy refused');
}

function flash(button, text) {
  button.textContent = text;
  setTimeout(() => {
    button.textContent = 'Copy';
  }, 1500);
}
