// The model picker: the models this key may use (GET /v1/models), the
// choice remembered in this browser and sent with each message.

const MODEL_KEY = 'llm-chat.model';

/** @param {HTMLSelectElement} modelPicker the page's `<select>` of models */
export function createModelPicker(modelPicker) {
  /** Fills the picker from /v1/models; the last choice is remembered in this browser. */
  async function loadModels() {
    const response = await fetch('/v1/models', { headers: { accept: 'application/json' } });
    if (!response.ok) throw new Error(`models: HTTP ${response.status}`);
    const { data } = await response.json();
    const saved = localStorage.getItem(MODEL_KEY) ?? '';
    for (const { id } of data) {
      const option = document.createElement('option');
      option.value = id;
      option.textContent = id;
      modelPicker.append(option);
    }
    modelPicker.value = data.some(({ id }) => id === saved) ? saved : '';
    modelPicker.hidden = data.length < 2;
  }

  modelPicker.addEventListener('change', () => localStorage.setItem(MODEL_KEY, modelPicker.value));

  /** The model chosen for the next message, if any (otherwise the session's, or the server's default). */
  const chosenModel = () => (modelPicker.value ? { model: modelPicker.value } : {});

  return { loadModels, chosenModel };
}
