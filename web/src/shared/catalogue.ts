// The service catalogue, loaded once per page and named in the page's language: the console's
// names and the phone app's services (with prices, lengths and units) come from this one store.
import { defineStore } from 'pinia'
import { api, unwrap } from '@/api/client'
import type { components } from '@/api/schema'

export type CatalogueEntry = components['schemas']['CatalogueEntry']

let loading: Promise<void> | null = null

export const useCatalogue = defineStore('catalogue', {
  state: () => ({ entries: [] as CatalogueEntry[], loaded: false }),
  actions: {
    /** Loads the catalogue once; concurrent callers share the one request. A failure leaves
     * the codes to stand for the names, and the next call tries again. */
    load(): Promise<void> {
      if (this.loaded) return Promise.resolve()
      loading ??= (async () => {
        try {
          this.entries = unwrap(await api.GET('/api/v1/catalogue', {}))
          this.loaded = true
        } catch {
          // The names fall back to the codes.
        } finally {
          loading = null
        }
      })()
      return loading
    },
    name(code: string, locale: string): string {
      const entry = this.entries.find((candidate) => candidate.code === code)
      if (!entry) return code
      return locale === 'en' ? entry.name_en : entry.name_zh
    },
  },
})
