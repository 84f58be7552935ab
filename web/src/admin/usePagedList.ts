// A list read a page at a time with keyset paging: `fetchPage` gets the last item shown (none
// for the first page) and answers the next page. Loading, error and "is there more" included.
import { ref, type Ref } from 'vue'
import { useAction } from './useAction'

export function usePagedList<T>(fetchPage: (last: T | undefined, size: number) => Promise<T[]>, size = 50) {
  const { explain } = useAction()
  const items = ref([]) as Ref<T[]>
  const loading = ref(false)
  const error = ref<string | null>(null)
  const more = ref(false)

  async function load(next = false) {
    loading.value = true
    try {
      const page = await fetchPage(next ? items.value[items.value.length - 1] : undefined, size)
      items.value = next ? [...items.value, ...page] : page
      more.value = page.length === size
      error.value = null
    } catch (caught) {
      error.value = explain(caught)
    } finally {
      loading.value = false
    }
  }

  return { items, loading, error, more, load }
}
