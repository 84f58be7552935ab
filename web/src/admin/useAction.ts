// Runs an admin's command and says how it went: success as a message, a refusal as the
// problem's detail in the page's language. Answers whether it succeeded.
import { ref } from 'vue'
import { useI18n } from 'vue-i18n'
import { ElMessage } from 'element-plus'
import { ProblemError } from '@/shared/problem'

export function useAction() {
  const { t, locale } = useI18n()
  const busy = ref(false)
  async function run(command: () => Promise<unknown>): Promise<boolean> {
    busy.value = true
    try {
      await command()
      ElMessage.success(t('common.saved'))
      return true
    } catch (caught) {
      ElMessage.error({
        message: caught instanceof ProblemError ? caught.message_in(locale.value) : t('common.failed'),
        customClass: 'refusal-message',
      })
      return false
    } finally {
      busy.value = false
    }
  }
  function explain(caught: unknown): string {
    return caught instanceof ProblemError ? caught.message_in(locale.value) : t('common.failed')
  }
  return { busy, run, explain }
}
