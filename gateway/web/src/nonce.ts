// xterm.js adds <style> elements at run time. The page's CSP allows styles only from the
// gateway and with this response's nonce, so every <style> this page creates carries it.
// Imported first, before xterm creates any.

const meta = document.querySelector<HTMLMetaElement>('meta[name="podgate-style-nonce"]');
const nonce = meta?.content ?? '';
if (nonce && !nonce.startsWith('__')) {
  const create = document.createElement.bind(document) as (tag: string, options?: ElementCreationOptions) => HTMLElement;
  document.createElement = function (tag: string, options?: ElementCreationOptions): HTMLElement {
    const el = create(tag, options);
    if (tag.toLowerCase() === 'style') el.nonce = nonce;
    return el;
  } as typeof document.createElement;
}
meta?.remove();
