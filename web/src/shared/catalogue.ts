// The service catalogue's names, loaded once per page and shown in the page's language.
import { defineStore } from 'pinia'

interface Entry {
  code: string
  name_zh: string
  name_en: string
}

export const useCatalogue = defineStore('catalogue', {
  state: () => ({ entries: [] as Entry[], loaded: false }),
  actions: {
    async load() {
      if (this.loaded) return
      const response = await fetch('/api/v1/catalogue')
      if (response.ok) {
        this.entries = (await response.json()) as Entry[]
        this.loaded = true
      }
    },
    name(code: string, locale: string): string {
      const entry = this.entries.find((candidate) => candidate.code === code)
      if (!entry) return code
      return locale === 'en' ? entry.name_en : entry.name_zh
    },
  },
})
