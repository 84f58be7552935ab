// Every correction an admin makes carries a reason: asked for in a dialog, never empty.
import { ElMessageBox } from 'element-plus'
import { useI18n } from 'vue-i18n'

/** The reason typed, or null when the admin cancelled. */
export async function askReason(title: string, label: string, required: string, confirm: string, cancel: string): Promise<string | null> {
  try {
    const { value } = await ElMessageBox.prompt(label, title, {
      confirmButtonText: confirm,
      cancelButtonText: cancel,
      inputType: 'textarea',
      inputValidator: (text: string) => (text.trim().length > 0 && text.trim().length <= 500 ? true : required),
      customClass: 'reason-dialog',
    })
    return String(value).trim()
  } catch {
    return null
  }
}

/** `askReason` in the page's language. */
export function useReason() {
  const { t } = useI18n()
  return (title: string) => askReason(title, t('common.reason'), t('common.reasonRequired'), t('common.confirm'), t('common.cancel'))
}
