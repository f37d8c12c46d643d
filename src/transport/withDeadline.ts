/**
 * `work`, or `onTimeout()`'s error once `ms` have passed without an answer.
 * What `work` brings after that is handed to `onLate` (to release it): the
 * caller has moved on, but a slot taken late must still be given back.
 */
export function withDeadline<T>(work: Promise<T>, ms: number, onTimeout: () => Error, onLate: (value: T) => void = () => {}): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(onTimeout());
    }, ms);
    timer.unref();
    work.then(
      (value) => {
        clearTimeout(timer);
        if (late) onLate(value);
        else resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        if (!late) reject(error);
      },
    );
  });
}
