// How a screen reads its data and runs its commands, written once: a failed read stays on the
// screen as its error (with a retry), a refused command is a toast, and each holds a flag while
// it runs so that the right spinner turns.
import { ref, type Ref } from 'vue'
import { useI18n } from 'vue-i18n'
import { problemText, toastProblem } from './util'

/** Thrown by a read to say, in the page's words, why there is nothing to show. */
export class NothingToShow extends Error {}

/**
 * A screen's read: `load` keeps what `read` answers in `data`, with `loading` set meanwhile and
 * `loaded` once a read has succeeded. A failure keeps what was shown before (a reload's failure
 * does not blank the screen) and sets `error`, which the next success clears.
 */
export function useLoad<T>(read: () => Promise<T>) {
  const { t, locale } = useI18n()
  const data = ref(null) as Ref<T | null>
  const loaded = ref(false)
  const loading = ref(false)
  const error = ref<string | null>(null)

  async function load() {
    loading.value = true
    try {
      data.value = await read()
      loaded.value = true
      error.value = null
    } catch (caught) {
      error.value = caught instanceof NothingToShow ? caught.message : problemText(caught, locale.value, t('common.failed'))
    } finally {
      loading.value = false
    }
  }

  return { data, loaded, loading, error, load }
}

function runner<K>(busy: Ref<K>, idle: K) {
  const { t, locale } = useI18n()
  return async (key: K, command: () => Promise<unknown>): Promise<boolean> => {
    busy.value = key
    try {
      await command()
      return true
    } catch (caught) {
      toastProblem(caught, locale.value, t('common.failed'))
      return false
    } finally {
      busy.value = idle
    }
  }
}

/**
 * A screen's command: `busy` is true while `command` runs, and a refusal shows as a toast. The
 * command says what success means itself (a toast, a reload, going back), so that it happens
 * before the spinner stops. Answers whether the command succeeded.
 */
export function useCommand() {
  const busy = ref(false)
  const run = runner(busy, false)
  return { busy, run: (command: () => Promise<unknown>) => run(true, command) }
}

/** As `useCommand`, for a command on one of several things (a row, a section): `busy` names it. */
export function useCommands<K>() {
  const busy = ref(null) as Ref<K | null>
  return { busy, run: runner<K | null>(busy, null) as (key: K, command: () => Promise<unknown>) => Promise<boolean> }
}
