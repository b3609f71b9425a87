// Talking to the API. The key is kept in this tab's sessionStorage (gone when the tab closes) and sent
// as HTTP Basic `:<key>` on every request: never in a URL, where logs and history keep it, and never as
// a cookie, which the browser would attach to requests other sites' pages make.

const KEY = 'geoimport.key';

export const key = {
  get: () => sessionStorage.getItem(KEY) || '',
  set: (value) => sessionStorage.setItem(KEY, value),
  forget: () => sessionStorage.removeItem(KEY),
};

/** The Authorization header value for the kept key (btoa takes Latin-1, so the key goes through UTF-8). */
export function authorization() {
  const bytes = new TextEncoder().encode(`:${key.get()}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}

/** An API answer that is not 2xx, with the message the server gave. */
export class ApiError extends Error {
  constructor(status, body) {
    super(describe(status, body));
    this.status = status;
  }
}

function describe(status, body) {
  // The server's 401 text speaks to API callers (query parameter or Basic); the page's user typed a key.
  if (status === 401) return 'The API key was not accepted.';
  const errors = body && body.errors;
  if (typeof errors === 'string') return errors;
  if (errors && typeof errors === 'object') return Object.values(errors).flat().join('; ');
  return `The server answered ${status}.`;
}

/** JSON from `method path` (with a JSON body when given); throws ApiError unless 2xx. */
export async function api(method, path, body) {
  const headers = { Authorization: authorization(), Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) throw new ApiError(response.status, json);
  return json;
}

/**
 * Uploads `file` as multipart field `file`, calling onProgress(sent, total) as bytes leave: fetch cannot
 * report upload progress, XMLHttpRequest can. Resolves to the answer's JSON.
 */
export function upload(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/v1/imports');
    xhr.setRequestHeader('Authorization', authorization());
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => {
      let json = null;
      try {
        json = JSON.parse(xhr.responseText);
      } catch {
        json = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(json);
      else reject(new ApiError(xhr.status, json));
    };
    xhr.onerror = () => reject(new Error('The upload was cut off (network error).'));
    const form = new FormData();
    form.append('file', file, file.name);
    xhr.send(form);
  });
}
